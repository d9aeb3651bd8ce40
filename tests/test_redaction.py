"""What is redacted before training (synthtext/pii/redaction.py), and what is only counted.

Ordinary text must not be damaged: durations, vague times, heights and presidio's URL hits on "low..it"
stay; names, contact details, specific dates and real links go. The scan still counts everything.
"""

import json

import pandas as pd
import pytest

from synthtext import cli, pii
from synthtext.config import TrainConfig
from synthtext.errors import ConfigError
from synthtext.report import build_report, render_html
from synthtext.synthesizer import TextSynthesizer


@pytest.fixture(scope="module")
def analyzer():
    return pii.default_analyzer()  # the one fit and the CLI use: built once for the module


def scanned(texts, analyzer):
    df = pd.DataFrame({"text": list(texts)})
    return df, pii.scan_pii(df, columns=["text"], analyzer=analyzer, n_jobs=1, detect_structured=False)


def redacted(texts, analyzer, entities=None):
    df, scan = scanned(texts, analyzer)
    return pii.redact_frame(df, scan, entities)["text"].tolist(), scan


def span_types(scan):
    return [s.entity_type for row in scan.spans["text"] for s in row]


VAGUE = "I washed it on a 2-week cycle last week and wore it all summer."
BODY = "I'm 5'4\" and 34 years old, the small fits."
LINKS = "Details at www.example.com/x and https://a.b/c but not example.org."
REAL = "My name is John Smith, mail john.smith@example.com or call 212-555-0199. It arrived on March 3, 2021."


def test_durations_and_vague_times_are_counted_not_redacted(analyzer):
    out, scan = redacted([VAGUE], analyzer)
    assert span_types(scan).count("DATE_TIME") >= 2  # the scan finds them (and keeps counting them)
    assert out == [VAGUE]


def test_heights_and_ages_are_not_damaged(analyzer):
    out, scan = redacted([BODY], analyzer)
    assert "DATE_TIME" in span_types(scan)
    assert out == [BODY]


def test_links_with_a_scheme_or_www_are_redacted_bare_domains_counted(analyzer):
    out, scan = redacted([LINKS], analyzer)
    assert out == ["Details at <URL> and <URL> but not example.org."]
    assert span_types(scan).count("URL") == 3


def test_presidio_url_hits_inside_ordinary_text_are_left_alone(analyzer):
    text = "it's very low cut..the back is very low..it's a little loose"
    out, scan = redacted([text], analyzer)
    assert "URL" in span_types(scan)
    assert out == [text]


def test_names_contacts_and_specific_dates_are_still_redacted(analyzer):
    out, _ = redacted([REAL], analyzer)
    assert out == ["My name is <PERSON>, mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>. It arrived on <DATE_TIME>."]


def test_all_redacts_every_span_the_scan_found(analyzer):
    out, _ = redacted([VAGUE, BODY, LINKS], analyzer, entities="all")
    assert out[0].startswith("I washed it on a <DATE_TIME> cycle <DATE_TIME> and wore it")
    assert "5'4" not in out[1] and "<DATE_TIME>" in out[1]
    assert "example.org" not in out[2]


def test_a_list_redacts_those_types_and_default_extends(analyzer):
    text = "John Smith moved to Boston on March 3, 2021."
    only_names, scan = redacted([text], analyzer, entities=["person"])  # case-insensitive
    assert "LOCATION" in span_types(scan)
    assert only_names == ["<PERSON> moved to Boston on March 3, 2021."]
    plus_places, _ = redacted([text], analyzer, entities="default,LOCATION")
    assert plus_places == ["<PERSON> moved to <LOCATION> on <DATE_TIME>."]
    assert redacted([text], analyzer)[0] == ["<PERSON> moved to Boston on <DATE_TIME>."]


@pytest.mark.parametrize("text", ["March 3, 2021", "3rd of March", "on july 2nd", "Aug 2010", "03/04/2021",
                                  "2021-03-04", "4.3.2021", "04/2021", "May 5", "2nd of may",
                                  "2000-04-16 11:34:35", "Sept. 11"])
def test_specific_dates(text):
    assert pii.is_specific_date(text)


@pytest.mark.parametrize("text", ["3 weeks", "a 2-week cycle", "last week", "summer", "years", "1977",
                                  "Monday", "5pm", "5'4", "34 years old", "27/4", "size 4 may run small",
                                  "v1.2.10", "the 60s", "christmas day", "12p", "8+ years"])
def test_not_specific_dates(text):
    assert not pii.is_specific_date(text)


def test_redacted_date_and_link_cover_the_whole_date_and_link():
    text = "ordered in Aug 2010, see WWW.Shop.example."
    year, link = text.index("2010"), text.index("WWW")
    spans = [pii.PiiSpan(year, year + 4, "DATE_TIME", 0.85), pii.PiiSpan(link, link + 6, "URL", 0.5)]  # "WWW.Sh"
    assert pii.redact(text, pii.redaction_spans(text, spans)) == "ordered in <DATE_TIME>, see <URL>."


def test_unknown_entity_type_is_a_config_error_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="EMAIL.*Valid: .*EMAIL_ADDRESS"):
        pii.check_redact_entities(["PERSON", "EMAIL"])
    with pytest.raises(ConfigError, match="stands alone"):
        pii.check_redact_entities("all,PERSON")
    with pytest.raises(ConfigError, match="redact_entities"):
        pii.check_redact_entities(42)


def test_fit_refuses_an_unknown_type_before_scanning(monkeypatch):
    def no_scan(*args, **kwargs):
        raise AssertionError("scanned before checking redact_entities")

    monkeypatch.setattr(pii, "scan_pii", no_scan)
    df = pd.DataFrame({"text": ["a review of some length here"] * 3})
    with pytest.raises(ConfigError, match="NAMES"):
        TextSynthesizer(["text"], redact_entities=["NAMES"]).fit(df)


def test_cli_unknown_type_exits_2(tmp_path, capsys, analyzer):
    path = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a review of some length here", "another one"]}).to_csv(path, index=False)
    code = cli.main(["fit", str(path), "--save-model", str(tmp_path / "m"), "--redact-entities", "PERSON,FOO"])
    err = capsys.readouterr().err
    assert code == 2 and "FOO" in err and "EMAIL_ADDRESS" in err
    assert not (tmp_path / "m").exists()


def test_known_entity_types_are_what_the_analyzer_finds(analyzer):
    assert pii.KNOWN_ENTITY_TYPES == set(analyzer.get_supported_entities("en"))
    assert {"LOCATION", "NRP"}.isdisjoint(pii.DEFAULT_REDACT_ENTITIES)
    assert {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
            "URL", "DATE_TIME"} <= pii.DEFAULT_REDACT_ENTITIES


def test_redaction_counts_split_the_scan_counts(analyzer):
    df, scan = scanned([VAGUE, REAL, LINKS], analyzer)
    counts = pii.redaction_counts(df, scan)
    total = scan.counts()["text"]
    done, left = counts["redacted"]["text"], counts["counted_only"]["text"]
    assert {e: done.get(e, 0) + left.get(e, 0) for e in total} == total
    assert done["PERSON"] == 1 and done["DATE_TIME"] == 1 and done["URL"] == 2
    assert left["DATE_TIME"] >= 2 and left["URL"] >= 1
    off = pii.redaction_counts(df, scan, enabled=False)
    assert off["redacted"]["text"] == {} and off["counted_only"]["text"] == total


def reviews(n=60) -> pd.DataFrame:
    texts = [f"wore it all summer and last week too, review {i}" if i % 3 else
             f"Ask Zebulon Quartermaine at zebulon.q@example.com about dress {i}" for i in range(n)]
    return pd.DataFrame({"product": ["dress", "top"] * (n // 2), "text": texts})


def test_fit_trains_on_default_redaction_and_the_report_lists_redacted_and_counted(analyzer, tmp_path):
    synth = TextSynthesizer(["text"], epsilon=None, structured="keep", model="builtin", model_size="tiny", max_new_tokens=8,
                            train=TrainConfig(epochs=1, batch_size=32, progress=False))
    synth.fit(reviews())
    training = synth._fit_data.redacted_train["text"].tolist()
    assert any("all summer and last week" in t for t in training)
    assert not any("Zebulon" in t or "zebulon.q@" in t for t in training)
    summary = synth.report_inputs()["pii_summary"]
    assert summary["redact_entities"] == "default"
    assert summary["redacted_entities"]["text"]["PERSON"] == 20
    assert summary["redacted_entities"]["text"]["EMAIL_ADDRESS"] == 20
    assert summary["counted_only"]["text"]["DATE_TIME"] == summary["counts"]["text"]["DATE_TIME"] >= 40
    inputs = synth.report_inputs()
    report = build_report(evaluation=None, **inputs)
    json.dumps(report)
    assert report["pii_scan"]["redacted_entities"] == summary["redacted_entities"]
    assert report["pii_scan"]["counted_only"] == summary["counted_only"]
    assert any("DATE_TIME" in c["text"] and "counted" in c["text"] for c in report["caveats"])
    html = render_html(report)
    assert "Counted, not redacted" in html and "Redacted before training" in html
    loaded = TextSynthesizer.load(synth.save(tmp_path / "model"))
    again = loaded.report_inputs()["pii_summary"]
    assert again["redacted_entities"] == summary["redacted_entities"] and loaded.redact_entities == "default"


def report_inputs(pii_summary):
    columns = [{"name": "text", "dtype": "object", "role": "text", "protected_by": "not DP (trained without "
                "differential privacy)"}]
    return {"evaluation": None, "ledger": None, "pii_summary": pii_summary,
            "data_summary": {"n_rows": 3, "n_train": 3, "n_holdout": 0, "columns": columns,
                             "text_columns": ["text"], "conditioning_columns": [], "structured": "keep",
                             "model": "builtin-tiny"}}


def test_report_carries_redacted_and_counted_and_refuses_bad_names():
    summary = {"counts": {"text": {"DATE_TIME": 150, "PERSON": 9}}, "redact_entities": "default",
               "redacted_entities": {"text": {"DATE_TIME": 2, "PERSON": 9}},
               "counted_only": {"text": {"DATE_TIME": 148}}, "structured_columns": {}, "examples": {}}
    report = build_report(**report_inputs(summary))
    assert report["pii_scan"]["redact_entities"] == "default"
    assert report["pii_scan"]["counted_only"] == {"text": {"DATE_TIME": 148}}
    html = render_html(report)
    assert "Counted, not redacted: DATE_TIME (148)" in html and "PERSON (9)" in html
    bad = dict(summary, counted_only={"text": {"a date": 3}})
    with pytest.raises(ConfigError, match="counted_only"):
        build_report(**report_inputs(bad))


def test_scan_table_marks_redacted_and_counted_types(tmp_path, capsys, analyzer):
    path = tmp_path / "in.csv"
    pd.DataFrame({"text": [VAGUE, REAL, "Another ordinary review of the dress."]}).to_csv(path, index=False)
    assert cli.main(["scan", str(path), "--quiet", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "PERSON" in out and "redacted by default" in out
    assert "counted only" in out or "counted, not redacted by default" in out
