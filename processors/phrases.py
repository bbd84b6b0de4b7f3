"""Key phrases of spoken or written text without an LLM, found the RAKE way (Rose et al.,
2010): the words are cut into candidate phrases at stop words and punctuation; a word scores
its degree (the words it shares phrases with) over its frequency, a phrase the sum of its
words' scores, and the best phrase of at most MAX_WORDS words wins, ties to the earliest. A
clip's title and a slide's summary of a long sentence come from here.
"""

import re

MAX_WORDS = 6
MAX_CHARS = 80
# English function words: phrases break at them (other languages break at punctuation only).
_STOP_TEXT = """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just let me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    okay ok yes yeah oh um uh like really well going get got go gonna wanna thing things way
    one two lot kind sort right here's that's it's we're they're you're i'm don't can't"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
# Words (with apostrophes, straight or curly, and hyphens), or punctuation that ends a phrase.
_TOKEN = re.compile(r"[\w'\u2019-]+|[.,;:!?()\[\]\"\u201c\u201d\u2026\u2013\u2014]")


def key_phrase(text: str) -> str:
    """Return the key phrase of `text` (as said, first letter capitalised), or "" if it has no
    words outside the stop words."""
    phrases = _candidates(text)
    if not phrases:
        return ""
    frequency: dict[str, int] = {}
    degree: dict[str, int] = {}
    for phrase in phrases:
        for word in phrase:
            key = word.casefold()
            frequency[key] = frequency.get(key, 0) + 1
            degree[key] = degree.get(key, 0) + len(phrase)

    def score(phrase: list[str]) -> float:
        return sum(degree[w.casefold()] / frequency[w.casefold()] for w in phrase)

    best = max(phrases, key=score)  # max keeps the first of equal scores
    title = " ".join(best)[:MAX_CHARS].rstrip()
    return title[0].upper() + title[1:]


def _candidates(text: str) -> list[list[str]]:
    phrases, current = [], []
    for token in _TOKEN.findall(text):
        if (
            not re.match(r"\w", token)
            or token.replace("\u2019", "'").casefold() in STOP_WORDS
            or (token.isdigit() and len(token) < 3)
        ):
            if current:
                phrases.append(current)
            current = []
            continue
        current.append(token)
        if len(current) == MAX_WORDS:
            phrases.append(current)
            current = []
    if current:
        phrases.append(current)
    return phrases
