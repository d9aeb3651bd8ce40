"""Recognizers and NER settings that synthtext adds to presidio's defaults (see build_analyzer)."""

# presidio's stock setting for spaCy entities (conf/default.yaml); NlpEngineProvider does not apply it
# when given a configuration dict, so we pass it ourselves.
NER_MODEL_CONFIGURATION = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
        "GPE": "LOCATION", "LOCATION": "LOCATION", "ORG": "ORGANIZATION", "ORGANIZATION": "ORGANIZATION",
        "DATE": "DATE_TIME", "TIME": "DATE_TIME",
    },
    "low_confidence_score_multiplier": 0.4,
    "low_score_entity_names": [],
    "labels_to_ignore": ["ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL",
                         "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART"],
}

# Names of presidio's predefined recognizers that an extra recognizer below replaces.
REPLACED_RECOGNIZERS: frozenset[str] = frozenset()


def extra_recognizers() -> list:
    """Recognizers added to presidio's predefined ones."""
    return []
