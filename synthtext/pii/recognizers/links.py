"""URLs with a scheme or starting with www., taken whole (LinkRecognizer)."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from ..redaction import URL_WITH_SCHEME


class LinkRecognizer(PatternRecognizer):
    """URLs with a scheme (http://, https://, ftp://) or starting with www., whole and in any case.

    presidio's UrlRecognizer needs a top-level domain from its list, so it misses links to hosts such as
    ``https://intranet/x`` or ``https://a.b/c``, and cuts ``WWW.Shop.example`` to ``WWW.Sh``. This
    recognizer takes the whole token (trailing punctuation left out) at a score above presidio's, so
    presidio's fragment of the same link is dropped as a duplicate. Bare domains ("example.org") stay
    with presidio's recognizer. May over-detect: nothing that starts with a scheme or www. is not a link.
    """

    PATTERNS = [Pattern("URL with a scheme or www.", URL_WITH_SCHEME.pattern, 0.65)]

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "LinkRecognizer")
        kwargs.setdefault("supported_entity", "URL")
        kwargs.setdefault("patterns", self.PATTERNS)
        kwargs.setdefault("context", [])
        super().__init__(**kwargs)
