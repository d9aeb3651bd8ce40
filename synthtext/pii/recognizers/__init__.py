"""Recognizers and NER settings that synthtext adds to presidio's defaults (see build_analyzer).

presidio's stock recognizers miss much of what Faker-style test data (and real data) hold: card numbers
outside the few prefixes and lengths its regex knows, phone numbers written the way most of the world
writes them (and North American ones with made-up area codes, "001-" or extensions), street addresses
(presidio has no recognizer for them), and the many names spaCy's small English pipeline does not tag as
PERSON. Each class fills one of these gaps through presidio's own extension points (Pattern,
validate_result, invalidate_result, context words, enhance_using_context) and says what it may
over-detect. One module per entity family: payment_cards.py, phone_numbers.py, nhs_numbers.py,
street_addresses.py, person_names.py, links.py; context.py holds the context-word helpers they share.
This module hands presidio the list (:func:`extra_recognizers`) and the NER settings.
"""

from __future__ import annotations

from .links import LinkRecognizer
from .nhs_numbers import NhsNumberRecognizer
from .payment_cards import PaymentCardRecognizer
from .person_names import NameListRecognizer
from .phone_numbers import LibPhoneRecognizer, PhoneShapeRecognizer
from .street_addresses import StreetAddressRecognizer

__all__ = ["NER_MODEL_CONFIGURATION", "REPLACED_RECOGNIZERS", "extra_recognizers", "LibPhoneRecognizer",
           "LinkRecognizer", "NameListRecognizer", "NhsNumberRecognizer", "PaymentCardRecognizer",
           "PhoneShapeRecognizer", "StreetAddressRecognizer"]

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
REPLACED_RECOGNIZERS: frozenset[str] = frozenset({"CreditCardRecognizer", "PhoneRecognizer", "NhsRecognizer"})

def extra_recognizers() -> list:
    """Recognizers added to presidio's predefined ones."""
    return [PaymentCardRecognizer(), LibPhoneRecognizer(), PhoneShapeRecognizer(), NhsNumberRecognizer(),
            StreetAddressRecognizer(), NameListRecognizer(), LinkRecognizer()]
