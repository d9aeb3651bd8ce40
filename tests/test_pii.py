import json
import os
import socket

import pandas as pd
import pytest

from synthtext import pii
from synthtext.pii import analyzer as pii_analyzer
from synthtext.pii import texts as pii_texts
from synthtext.errors import ConfigError, DataError
from synthtext.io import read_csv
from conftest import BENCH_DATA


@pytest.fixture(scope="module")
def analyzer():
    return pii.build_analyzer()


@pytest.fixture(scope="module")
def bench_texts():
    return read_csv(BENCH_DATA)["full_text"].tolist()


def customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["C-1001", "C-1002", "C-1003", "C-1004", "C-1005", "C-1006"],
        "customer_name": ["John Smith", "Maria Garcia", "David Johnson", "Sarah Williams",
                          "Michael Brown", "Emily Davis"],
        "email": ["john.smith@example.com", "maria.g@example.org", "djohnson@mail.example.com",
                  "sarah.w@example.net", "mbrown@example.com", "emily.davis@example.com"],
        "department": ["Dresses", "Tops", "Dresses", "Bottoms", "Tops", "Dresses"],
        "item_code": ["A1", "A1", "B2", "B2", "A1", "C3"],
        "rating": [5, 4, 3, 5, 1, 2],
        "complaint": [
            "My name is John Smith and the dress arrived torn, call me at 212-555-0199.",
            "Lovely top, fits perfectly and the colour is exactly as pictured.",
            "Please refund card 4111 1111 1111 1111 as soon as possible, thanks.",
            None,
            "Contact me at mbrown@example.com about the broken zipper on these jeans.",
            "Lovely top, fits perfectly and the colour is exactly as pictured.",
        ],
    })


def types_in(spans):
    return {s.entity_type for s in spans}


def test_scan_finds_pii_at_the_right_offsets(analyzer):
    df = customers()
    result = pii.scan_pii(df, analyzer=analyzer, n_jobs=1)
    assert result.text_columns == ["complaint"]
    rows = result.spans["complaint"]
    text0 = df["complaint"][0]
    found0 = {(text0[s.start:s.end], s.entity_type) for s in rows[0]}
    assert ("John Smith", "PERSON") in found0
    assert ("212-555-0199", "PHONE_NUMBER") in found0
    assert "CREDIT_CARD" in types_in(rows[2])
    assert rows[3] == []  # missing cell
    text4 = df["complaint"][4]
    assert any(text4[s.start:s.end] == "mbrown@example.com" and s.entity_type == "EMAIL_ADDRESS"
               for s in rows[4])
    assert rows[1] == [] and rows[5] == []
    counts = result.counts()["complaint"]
    assert counts["PERSON"] >= 1 and counts["EMAIL_ADDRESS"] == 1 and counts["CREDIT_CARD"] == 1
    assert result.rows_with_pii()["complaint"] == 3
    assert all(0.0 <= s.score <= 1.0 for row in rows for s in row)


def test_structured_pii_columns_are_found_by_values_and_names(analyzer):
    result = pii.scan_pii(customers(), analyzer=analyzer, n_jobs=1)
    structured = {c: s.entity_type for c, s in result.structured_columns.items()}
    assert structured["email"] == "EMAIL_ADDRESS"
    assert structured["customer_name"] == "PERSON"
    assert structured["customer_id"] == "ID"
    for not_pii in ("department", "item_code", "rating", "complaint"):
        assert not_pii not in structured


def test_structured_detection_needs_values_not_just_a_name(analyzer):
    df = pd.DataFrame({"Department Name": ["Dresses", "Tops", "Knits", "Jackets"] * 5,
                       "phone": ["n/a", "none", "unknown", "ask"] * 5})
    assert pii.detect_structured_pii(df, analyzer=analyzer, n_jobs=1) == {}


def test_text_column_rule():
    df = pd.DataFrame({
        "review": [f"this is review number {i} and it is long" for i in range(10)],
        "category": ["Dresses", "Tops"] * 5,
        "boilerplate": ["see the attached form for details"] * 10,
        "number": range(10),
        "empty": [None] * 10,
    })
    assert pii.detect_text_columns(df) == ["review"]
    assert pii.detect_text_columns(df, exclude=["review"]) == []


def test_columns_argument_is_checked(analyzer):
    df = customers()
    with pytest.raises(DataError, match="'nope'.*the table has"):
        pii.scan_pii(df, columns=["nope"], analyzer=analyzer)
    with pytest.raises(DataError, match="'rating' hold no text"):
        pii.scan_pii(df, columns=["rating"], analyzer=analyzer)
    with pytest.raises(ConfigError, match="score_threshold"):
        pii.scan_pii(df, score_threshold=1.5, analyzer=analyzer)
    result = pii.scan_pii(df, columns=["complaint"], analyzer=analyzer, detect_structured=False)
    assert result.text_columns == ["complaint"] and result.structured_columns == {}


class CountingAnalyzer:
    """A real analyzer that counts how many texts it analysed."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.nlp_engine = inner.nlp_engine

    def get_supported_entities(self, language):
        return self.inner.get_supported_entities(language)

    def analyze(self, text, **kwargs):
        self.calls += 1
        return self.inner.analyze(text, **kwargs)


def test_identical_cells_are_analysed_once(analyzer):
    counting = CountingAnalyzer(analyzer)
    texts = ["Write to anna@example.com please."] * 50 + ["Nothing to see here at all."] * 50
    spans = pii.analyze_texts(texts, analyzer=counting, n_jobs=1)
    assert counting.calls == 2
    assert spans[0] == spans[49] and spans[0] != spans[50]


def test_presidio_is_kept_on_the_cpu_unless_the_user_chose(monkeypatch):
    """presidio probes CUDA on import and moves spaCy to a GPU where CuPy exists; forked scan workers
    would then crash. build_analyzer sets presidio's own PRESIDIO_DEVICE to cpu before that import."""
    import subprocess
    import sys

    code = ("import os; os.environ.pop('PRESIDIO_DEVICE', None)\n"
            "from synthtext import pii; pii.build_analyzer(None)\n"
            "from presidio_analyzer.nlp_engine import device_detector\n"
            "print(os.environ['PRESIDIO_DEVICE'], device_detector.get_device())")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "cpu"]
    monkeypatch.setenv("PRESIDIO_DEVICE", "cuda:1")
    pii_analyzer._keep_presidio_on_cpu()
    assert os.environ["PRESIDIO_DEVICE"] == "cuda:1"  # the user's choice stands


def test_no_worker_processes_when_spacy_runs_on_a_gpu(analyzer, bench_texts, monkeypatch):
    texts = bench_texts[:300]  # more than one chunk
    expected = pii.analyze_texts(texts, analyzer=analyzer, n_jobs=1)
    monkeypatch.setattr(pii_texts, "spacy_on_cpu", lambda: False)
    monkeypatch.setattr(pii_texts, "ProcessPoolExecutor", None)  # any attempt to fork would fail here
    assert pii.analyze_texts(texts, analyzer=analyzer, n_jobs=2) == expected


def test_skipping_impossible_recognizers_changes_nothing(analyzer, bench_texts):
    texts = bench_texts[:200] + ["no digits and no at sign here, just Maria from Lisbon"]
    fast = pii.analyze_texts(texts, analyzer=analyzer, n_jobs=1, skip_impossible=True)
    slow = pii.analyze_texts(texts, analyzer=analyzer, n_jobs=1, skip_impossible=False)
    assert fast == slow


def test_worker_processes_give_the_same_spans(analyzer, bench_texts):
    texts = bench_texts[:600]  # more than one chunk, so workers are used
    assert pii.analyze_texts(texts, analyzer=analyzer, n_jobs=2) == \
        pii.analyze_texts(texts, analyzer=analyzer, n_jobs=1)
    with pytest.raises(ConfigError, match="n_jobs"):
        pii.analyze_texts(texts, analyzer=analyzer, n_jobs=0)


def test_numbers_are_never_person(analyzer):
    spans = pii.analyze_texts(["Order 12345 67890 was shipped to 221B"], analyzer=analyzer, n_jobs=1)[0]
    text = "Order 12345 67890 was shipped to 221B"
    assert all(any(ch.isalpha() for ch in text[s.start:s.end]) for s in spans if s.entity_type == "PERSON")


def test_an_injected_analyzer_is_used():
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.recognizer_registry import RecognizerRegistry

    registry = RecognizerRegistry()
    registry.add_recognizer(PatternRecognizer(supported_entity="TICKET",
                                              patterns=[Pattern("ticket", r"TCK-\d{4}", 0.9)]))
    stub = AnalyzerEngine(registry=registry,
                          nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]))
    df = pd.DataFrame({"note": ["see TCK-1234 for the details of this case", "nothing here at all, really"]})
    result = pii.scan_pii(df, analyzer=stub, detect_structured=False, n_jobs=1)
    assert [[(s.start, s.end, s.entity_type) for s in row] for row in result.spans["note"]] == \
        [[(4, 12, "TICKET")], []]


def test_regex_only_engine_warns_loudly_and_still_finds_emails():
    with pytest.warns(UserWarning, match="will NOT detect person names"):
        regex_only = pii.build_analyzer(None)
    df = pd.DataFrame({"note": ["mail anna.k@example.com or ask Anna Karenina in Moscow"]})
    result = pii.scan_pii(df, analyzer=regex_only, detect_structured=False, n_jobs=1)
    assert any("will NOT detect person names" in w for w in result.warnings)
    found = types_in(result.spans["note"][0])
    assert "EMAIL_ADDRESS" in found and not found & {"PERSON", "LOCATION"}
    assert "regex recognizers only" in result.engine


def test_auto_without_spacy_pipeline_warns(monkeypatch):
    monkeypatch.setattr(pii_analyzer, "find_spacy_pipeline", lambda *a, **k: None)
    with pytest.warns(UserWarning, match="will NOT detect person names"):
        pii.build_analyzer("auto")


def test_unknown_spacy_pipeline_is_a_config_error():
    with pytest.raises(ConfigError, match="spacy_pipeline.*not installed"):
        pii.build_analyzer("xx_no_such_pipeline")


def test_scan_never_touches_the_network(analyzer, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = pii.build_analyzer()  # a fresh build must not download a spaCy pipeline either
    df = pd.DataFrame({"note": ["write to jane.doe@example.co.uk or visit https://example.org/help"]})
    result = pii.scan_pii(df, analyzer=fresh, detect_structured=False, n_jobs=1)
    assert "EMAIL_ADDRESS" in types_in(result.spans["note"][0])


def test_result_serialisation_holds_no_cell_text(analyzer):
    df = customers()
    result = pii.scan_pii(df, analyzer=analyzer, n_jobs=1)
    dumped = json.dumps(result.to_dict())
    for secret in ("John Smith", "212-555-0199", "4111 1111 1111 1111", "mbrown@example.com"):
        assert secret not in dumped
    cells = list(result.cells())
    assert len(cells) == len(df) and cells[0][:2] == (0, "complaint")


# --- redaction and surrogates --------------------------------------------------------------------

def span(start, end, entity, score=0.9):
    return pii.PiiSpan(start, end, entity, score)


def test_redact_replaces_spans_with_typed_placeholders():
    text = "Hi, I am Ann Lee, mail ann@x.org"
    spans = [span(9, 16, "PERSON"), span(23, 32, "EMAIL_ADDRESS")]
    assert pii.redact(text, spans) == "Hi, I am <PERSON>, mail <EMAIL_ADDRESS>"
    assert pii.redact(text, []) == text


def test_overlapping_spans_keep_the_best_one():
    text = "call 555-0100-77 now"
    spans = [span(5, 13, "PHONE_NUMBER", 0.7), span(5, 16, "US_BANK_NUMBER", 0.4), span(9, 16, "DATE_TIME", 0.9)]
    assert pii.redact(text, spans) == "call 555-<DATE_TIME> now"
    assert [s.entity_type for s in pii.resolve_overlaps(spans)] == ["DATE_TIME"]


def test_surrogates_are_consistent_and_never_the_original():
    surrogates = pii.Surrogates(seed=7)
    text = "Ann Lee called; later ann lee wrote to Bob Day."
    spans = [span(0, 7, "PERSON"), span(22, 29, "PERSON"), span(39, 46, "PERSON")]
    out = surrogates.replace_spans(text, spans)
    first, second = surrogates.for_original("PERSON", "Ann Lee"), surrogates.for_original("PERSON", "Bob Day")
    assert out == f"{first} called; later {first} wrote to {second}."
    assert first != second and "Ann Lee" not in out and "Bob Day" not in out
    assert pii.Surrogates(seed=7).replace_spans(text, spans) == out  # seeded: reproducible


def test_fill_placeholders_uses_known_values_and_faker_types():
    surrogates = pii.Surrogates(seed=1)
    out = surrogates.fill_placeholders("Dear <PERSON>, we mailed <EMAIL_ADDRESS> about <WEIRD_THING>.",
                                       known={"PERSON": "Zoe Quinn"})
    assert out.startswith("Dear Zoe Quinn, we mailed ")
    assert "@" in out and "<" not in out and ">" not in out
    assert pii.PLACEHOLDER.search(out) is None


def test_only_entity_placeholders_are_filled_and_tags_stay_as_written():
    """A model writes upper-case HTML tags too (``<I>`` ... ``</i>``): given the placeholder types, those stay
    as written instead of becoming a random code; a custom type the scan found is filled."""
    types = pii.placeholder_types(["EMPLOYEE_ID"])
    assert {"PERSON", "LOCATION", "ORGANIZATION", "EMPLOYEE_ID"} <= types and "I" not in types
    out = pii.Surrogates(seed=1).fill_placeholders("<I>Nice</I> said <PERSON>, badge <EMPLOYEE_ID>.",
                                                   known={"PERSON": "Zoe Quinn"}, types=types)
    assert out.startswith("<I>Nice</I> said Zoe Quinn, badge ") and "<EMPLOYEE_ID>" not in out


def test_surrogate_locale():
    assert pii.Surrogates(locale="de_DE", seed=3).new_value("PERSON")
    with pytest.raises(ConfigError, match="locale"):
        pii.Surrogates(locale="xx_NOPE")


def test_redact_frame_and_examples_hide_raw_pii(analyzer):
    df = customers()
    result = pii.scan_pii(df, analyzer=analyzer, n_jobs=1)
    redacted = pii.redact_frame(df, result)
    assert "John Smith" not in redacted["complaint"][0] and "<PERSON>" in redacted["complaint"][0]
    assert redacted["complaint"][1] == df["complaint"][1] and pd.isna(redacted["complaint"][3])
    examples = pii.redacted_examples(df, result, "complaint")
    assert examples and all("John Smith" not in e and "mbrown@example.com" not in e for e in examples)


def test_examples_mask_pii_the_scan_missed():
    masked = pii.mask_undetected("Kristíana Valbergsdóttir said The <PERSON> paid 4111 at Lisbon")
    assert masked == "K\u2026 V\u2026 said The <PERSON> paid #### at L\u2026"


def test_dates_and_places_are_not_structured_pii(analyzer):
    df = pd.DataFrame({"opened": [f"2024-0{m}-1{d}" for m in range(1, 6) for d in range(4)],
                       "city": ["Paris", "London", "Berlin", "Madrid"] * 5,
                       "home_address": ["12 Main Street, Springfield", "4 Elm Road, Boston",
                                        "77 Sunset Blvd, Los Angeles", "9 Baker Street, London"] * 5})
    found = pii.detect_structured_pii(df, analyzer=analyzer, n_jobs=1)
    assert "opened" not in found and "city" not in found
    assert found["home_address"].entity_type == "LOCATION"


def test_found_values_collects_span_and_column_values_for_the_chosen_rows():
    from synthtext.pii import PiiScanResult, PiiSpan, StructuredPiiColumn, found_values

    df = pd.DataFrame({"note": ["call Ann Lee now", None, "mail bo@x.org"], "who": ["Ann Lee", "Cy Ro", None]})
    scan = PiiScanResult(
        text_columns=["note"],
        spans={"note": [[PiiSpan(5, 12, "PERSON", 0.9)], [], [PiiSpan(5, 13, "EMAIL_ADDRESS", 1.0)]]},
        structured_columns={"who": StructuredPiiColumn("who", "PERSON", 1.0, "values")},
        n_rows=3, engine="test")
    assert found_values(df, scan) == {"PERSON": {"Ann Lee", "Cy Ro"}, "EMAIL_ADDRESS": {"bo@x.org"}}
    assert found_values(df, scan, rows=[1, 2]) == {"PERSON": {"Cy Ro"}, "EMAIL_ADDRESS": {"bo@x.org"}}


def test_mask_undetected_masks_lower_case_contacts_the_scan_missed():
    from synthtext.pii import mask_undetected

    masked = mask_undetected("write to zebulon.q@secret-mail.example or see www.shop.example/x, <PERSON> said")
    assert "zebulon" not in masked and "secret-mail" not in masked and "shop.example" not in masked
    assert "<PERSON>" in masked and "write to" in masked
    assert mask_undetected(masked) .count("@") == masked.count("@")  # masking twice changes nothing more


# --- long cells are analysed in overlapping pieces ------------------------------------------------

# (context, value, entity): the value is found as entity after the context words.
PLANTED = [("call me at ", "415-555-0199", "PHONE_NUMBER"),
           ("write to ", "ann.lee@example.com", "EMAIL_ADDRESS"),
           ("pay with card ", "4111 1111 1111 1111", "CREDIT_CARD"),  # Visa's Luhn-valid test number
           ("yesterday I met ", "Sigrid Nyström", "PERSON")]
# No sentence ends, so pieces are cut at whatever space is nearest: inside "Sigrid Nyström" too.
FILLER = "the fabric is soft and the colour is lovely but the sleeves run a little long "


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(pii_texts, "PIECE_CHARS", 600)
    monkeypatch.setattr(pii_texts, "PIECE_OVERLAP_CHARS", 150)
    monkeypatch.setattr(pii_texts, "CHUNK_CHARS", pii_texts.CHUNK_CHARS)  # restored after a test changes it


def plant_at_cuts(text: str, n_pieces: int) -> tuple[str, list[tuple[int, str, str]]]:
    """``text`` with PLANTED values written over it where pieces are cut: one where piece i would end
    and one where piece i + 1 would start, for the first ``n_pieces`` pieces. Returns (text, [(start,
    value, entity)])."""
    planted = []

    def write(text, pos, k):
        context, value, entity = PLANTED[k % len(PLANTED)]
        start = pos - len(value) // 2  # pos falls inside the value
        phrase = " " + context + value + " "
        at = start - len(context) - 1
        planted.append((start, value, entity))
        return text[:at] + phrase + text[at + len(phrase):]

    for i in range(n_pieces):
        text = write(text, pii_texts._piece_bounds(text)[i][0] + pii_texts.PIECE_CHARS, 2 * i)
        text = write(text, pii_texts._piece_bounds(text)[i][1] - pii_texts.PIECE_OVERLAP_CHARS, 2 * i + 1)
    return text, planted


def test_long_cell_is_scanned_in_pieces_without_losing_pii_at_the_cuts(analyzer, small_pieces):
    text, planted = plant_at_cuts(FILLER * 400, n_pieces=40)  # 30,400 characters
    bounds = pii_texts._piece_bounds(text)
    assert len(text) > 30_000 and len(bounds) > 60
    cuts = [end for _, end in bounds[:-1]] + [start for start, _ in bounds[1:]]
    across = [value for start, value, _ in planted if any(start < cut < start + len(value) for cut in cuts)]
    assert len(across) >= 20 and {"4111 1111 1111 1111", "Sigrid Nyström"} <= set(across)

    df = pd.DataFrame({"note": [text, "A short note from Sigrid Nyström."]})
    spans = pii.scan_pii(df, analyzer=analyzer, detect_structured=False, n_jobs=1).spans["note"][0]
    found = {(s.start, s.end, s.entity_type) for s in spans}
    for start, value, entity in planted:
        assert (start, start + len(value), entity) in found, value
        assert text[start:start + len(value)] == value
    assert len(found) == len(spans)  # the overlaps gave no duplicate spans

    pii_texts.CHUNK_CHARS = 5_000  # pieces of the two cells shared by two worker processes
    done = []
    assert pii.analyze_texts([text, text[:10_000]], analyzer=analyzer, n_jobs=2, progress=done.append)[0] == spans
    assert sum(done) == 2
    pii_texts.PIECE_CHARS = None  # the whole cell at once finds exactly the same spans
    assert pii.analyze_texts([text], analyzer=analyzer, n_jobs=1)[0] == spans


def test_short_cells_are_analysed_whole(analyzer, bench_texts, monkeypatch):
    texts = bench_texts[:100]
    assert all(pii_texts._piece_bounds(t) == [(0, len(t))] for t in texts)
    pieces = pii.analyze_texts(texts, analyzer=analyzer, n_jobs=1)
    monkeypatch.setattr(pii_texts, "PIECE_CHARS", None)
    assert pii.analyze_texts(texts, analyzer=analyzer, n_jobs=1) == pieces


def test_piece_spans_are_joined_once(small_pieces):
    text = FILLER * 14
    bounds = pii_texts._piece_bounds(text)
    assert len(bounds) == 3 and bounds[0][0] == 0 and bounds[-1][1] == len(text)
    for (start, end), (next_start, next_end) in zip(bounds, bounds[1:]):
        assert start < next_start <= end - pii_texts.PIECE_OVERLAP_CHARS and end < next_end
        assert text[end - 1] == " " and text[next_start - 1] == " "  # cut between words
    (_, end0), (start1, _), _ = bounds
    middle = (start1 + end0) // 2

    def piece(i, *spans):  # spans given in text offsets, returned in piece i's offsets
        return [span(s - bounds[i][0], e - bounds[i][0], t, score) for s, e, t, score in spans]

    both = (middle - 20, middle - 5, "PERSON", 0.85)  # in the overlap: both pieces find it
    cut_off = (end0 - 8, end0, "PHONE_NUMBER", 0.75)  # piece 0 sees only its start
    whole = (end0 - 8, end0 + 10, "PHONE_NUMBER", 0.75)
    inner = (middle + 10, middle + 14, "PERSON", 0.5)  # inside a PERSON piece 0 found with a higher score
    outer = (middle - 2, middle + 20, "PERSON", 0.85)
    joined = pii_texts._join_pieces(bounds, [piece(0, both, cut_off, outer), piece(1, both, whole, inner), []])
    assert [(s.start, s.end, s.entity_type) for s in joined] == [both[:3], outer[:3], whole[:3]]
