"""The COCO-caption tokenisation, in Python (no Java).

coco-caption (and pycocoevalcap) tokenise every candidate and reference with Stanford CoreNLP
3.4.1's PTBTokenizer (`-preserveLines -lowerCase`) and then drop the tokens in `PUNCTUATIONS`.
Scores are computed on the result, so the tokenisation is part of the metric: splitting "it's"
into "it 's" changes n-gram counts. This module reimplements the PTB rules that matter for captions:

- lower-casing (after the lexing: abbreviations are recognised in the original case);
- punctuation split off word edges (`.`, `,`, `;`, `:`, `?`, `!`, quotes, `-`, `--`, `...`), kept
  inside numbers ("3.5", "1,000", "10:30"), initialisms ("u.s.", "p.m.") and the abbreviations that
  PTBTokenizer knows ("etc.", "mr.", "st.");
- clitics split ("it's" -> "it 's", "don't" -> "do n't", "can't" -> "ca n't", "gonna" -> "gon na");
- `$ % & + = * ~ #<digit>` and brackets split into their own tokens; brackets become `-lrb-` etc.

Format quirk kept on purpose: coco's `PUNCTUATIONS` lists "-LRB-" in upper case but the tokenizer
lower-cases it first, so "(" survives as the token "-lrb-" in every published COCO-style score; and
"!!", "?!" are single PTB tokens that are not in the list, so they survive too.

Known differences from the Java lexer (rare in captions; see docs/metrics.md): a few context rules
("No." before a number, "v1.2" -> "v1 .2", "3:00pm" -> "3:00 pm", "a,1" -> "a ,1") are not copied.
"""
import re
from typing import List

# pycocoevalcap/tokenizer/ptbtokenizer.py's list, case included (see the module docstring).
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])

# Abbreviations PTBTokenizer keeps with their period, found by running CoreNLP 3.4.1 on
# "the <word>. thing" for candidate words. The second set only counts when capitalised
# ("Mass." is Massachusetts, "mass." is a noun at the end of a sentence).
_ABBREVIATIONS = frozenset("""
  jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri
  ala ariz calif colo conn ct dak fla ga ind kan kans ky md mich minn mo mont neb nev okla penn
  tenn va vt wis wisc wyo adm gen brig capt cmdr col gov lt maj pres rep sen sgt supt hon rev
  mme mlle mr mrs ms messrs dr prof jr sr esq st ave blvd rd mt ft sq ste bldg p cf al etc vs v c
  est dept univ assn bros co corp inc ltd plc cos natl intl assoc sens reps atty""".split())
_CAPITALISED_ABBREVIATIONS = frozenset("ark del ill la mass miss ore pa tex wash".split())

# Characters that always form tokens of their own; unicode dashes, ellipses and curly quotes are
# mapped to their PTB ASCII forms first.
_UNICODE = {"\u2014": " -- ", "\u2013": " -- ", "\u2026": " ... ", "\u201c": " `` ",
            "\u201d": " '' ", "\u2018": " ` ", "\u2019": " ' ", "\u00a0": " "}
_ALWAYS_SPLIT = re.compile(r"([$%&+=()\[\]{}~\u00bf\u00a1]|\*+|#(?=\d|$))")
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
# "a.", "u.s.", "ph.d.": a single letter, or letter groups joined by periods.
_INITIALISM = re.compile(r"^([a-z]|[a-z]+(\.[a-z]+)+)\.$", re.IGNORECASE)
_WHOLE_WORD_SPLITS = {"cannot": ["can", "not"], "gonna": ["gon", "na"], "wanna": ["wan", "na"],
                      "gotta": ["got", "ta"], "gimme": ["gim", "me"], "lemme": ["lem", "me"],
                      "'tis": ["'t", "is"], "'twas": ["'t", "was"]}
_KEEP_WITH_APOSTROPHE = re.compile(r"^'(s|m|d|re|ve|ll|em|n|\d\ds?)$", re.IGNORECASE)
_CLITIC = re.compile(r"^(.*[^'])(n't|'s|'m|'d|'re|'ve|'ll|'n)$", re.IGNORECASE)
# Inside a word: "--", ";", "'n'" always; "," and ":" unless between digits ("1,000", "10:30");
# ":" not in "http://"; "'" between digits ("5'6").
_INNER_SEPARATOR = re.compile(
    r"(--|;|'n'|(?<!\d),|,(?!\d)|(?<!\d):(?!//)|(?<=\d):(?!\d|//)|(?<=\d)'(?=\d))",
    re.IGNORECASE)
# A period directly before these stays on its word (PTB only splits a sentence-final period).
_KEEPS_PERIOD_BEFORE = frozenset([",", ";", ":", "!", "?"])
_TRAILING = re.compile(r"^(.*?)([!?]{2,}|[.,;:!?]|''|\"|'|--|-)$")


def _is_abbreviation(word: str) -> bool:
  """`word` ends with '.'; True when PTB keeps the period attached (original case)."""
  stem = word[:-1]
  if _INITIALISM.match(word):
    return True
  if stem.lower() in _ABBREVIATIONS:
    return True
  return stem[:1].isupper() and stem.lower() in _CAPITALISED_ABBREVIATIONS


def _split_leading(piece: str, out: List[str]) -> str:
  """Moves leading quotes and dashes of `piece` into `out`; returns the rest."""
  while piece:
    if piece.startswith("``"):
      out.append("``")
      piece = piece[2:]
    elif piece.startswith("..."):
      out.append("...")
      piece = piece[3:] if piece.strip(".") else ""  # a bare run of dots is one "..." token
    elif piece[0] in "\"`":
      out.append("``" if piece[0] == '"' else "`")
      piece = piece[1:]
    elif piece.startswith("--"):
      out.append("--")
      piece = piece[2:]
    elif piece[0] == "-" and len(piece) > 1 and not piece[1].isdigit():
      out.append("-")
      piece = piece[1:]
    elif piece[0] == "/" and len(piece) > 1:
      out.append("/")
      piece = piece[1:]
    elif (piece[0] == "'" and len(piece) > 1 and piece[1] != "'" and
          not _KEEP_WITH_APOSTROPHE.match(piece.rstrip(".,;:!?\"'")) and
          piece.rstrip(".,;:!?\"'").lower() not in _WHOLE_WORD_SPLITS):
      out.append("`")
      piece = piece[1:]
    else:
      break
  return piece


def _split_trailing(piece: str) -> tuple[str, List[str]]:
  """Splits trailing punctuation off `piece`; returns (core, trailing tokens in order)."""
  tail: List[str] = []
  while piece:
    dots = len(piece) - len(piece.rstrip("."))
    if dots == 1 and tail and tail[-1] in _KEEPS_PERIOD_BEFORE:  # "man.," -> "man." ","
      break
    if dots >= 2 and _is_abbreviation(piece[:len(piece) - dots + 1]):  # "etc..." -> "etc." ". ."
      tail.extend(["..."] if dots > 3 else ["."] * (dots - 1))
      piece = piece[:len(piece) - dots + 1]
      break
    if dots >= 2:
      tail.extend(["..."] if dots >= 3 else [".", "."])
      piece = piece[:-dots]
      continue
    if dots == 1 and _is_abbreviation(piece):
      break
    if piece.endswith("/") and len(piece) > 1:
      tail.append("/")
      piece = piece[:-1]
      continue
    match = _TRAILING.match(piece)
    if not match or not match.group(1):
      break
    piece, token = match.group(1), match.group(2)
    tail.append("''" if token == '"' else token)
  return piece, tail[::-1]


def _split_word(word: str) -> List[str]:
  """Splits one separator-free core into PTB word tokens (clitics, 'gonna')."""
  if word.lower() in _WHOLE_WORD_SPLITS:
    first = len(_WHOLE_WORD_SPLITS[word.lower()][0])
    return [word[:first], word[first:]]
  clitics: List[str] = []
  while match := _CLITIC.match(word):
    word = match.group(1)
    clitics.insert(0, match.group(2))
  return [word] + clitics


def _ptb_chunk(chunk: str) -> List[str]:
  """PTB tokens of one whitespace-free chunk that holds no always-split characters."""
  if chunk in ("'", "''", '"', "`", "``"):
    return ["''" if chunk == '"' else chunk]
  out: List[str] = []
  core, tail = _split_trailing(_split_leading(chunk, out))
  for i, piece in enumerate(_INNER_SEPARATOR.split(core) if core else []):
    if i % 2:  # re.split puts the captured separators at odd positions.
      out.append(piece)
    elif piece:
      out.extend(_split_word(piece))
  return out + tail


def ptb_tokenize(text: str) -> List[str]:
  """PTBTokenizer(-lowerCase)-style tokens of `text`, punctuation tokens included."""
  for char, replacement in _UNICODE.items():
    text = text.replace(char, replacement)
  tokens: List[str] = []
  for chunk in _ALWAYS_SPLIT.sub(r" \1 ", text).split():
    if chunk in _BRACKETS:
      tokens.append(_BRACKETS[chunk])
    elif chunk == "#" or _ALWAYS_SPLIT.fullmatch(chunk):
      tokens.append(chunk)
    else:
      tokens.extend(_ptb_chunk(chunk))
  return [t.lower() for t in tokens]


def coco_tokenize(text: str) -> str:
  """The text coco-caption scores: PTB tokens, lower-cased, `PUNCTUATIONS` dropped, ' '-joined.

  Args:
    text: one caption, any case, may hold newlines.

  Returns:
    The tokens joined by single spaces ("" when nothing is left).
  """
  return " ".join(t for t in ptb_tokenize(text) if t not in PUNCTUATIONS)
