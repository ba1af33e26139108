"""Tests for vidistill/eval/metrics/coco_tokenizer.py against Stanford PTBTokenizer's output."""
import glob
import os
import random
import shutil
import subprocess

import pytest

from vidistill.eval.metrics import coco_tokenizer
from vidistill.eval.metrics.coco_tokenizer import coco_tokenize

# (caption, coco-caption tokens). The expected side was produced by the reference itself: Stanford
# CoreNLP 3.4.1's PTBTokenizer (the jar pycocoevalcap ships) run as pycocoevalcap runs it
# (`-preserveLines -lowerCase`), then pycocoevalcap's PUNCTUATIONS filter.
PTB_REFERENCE_CASES = [
    ('A man is playing the guitar.',
     'a man is playing the guitar'),
    ("A woman's talking about cars, trucks and buses!",
     "a woman 's talking about cars trucks and buses"),
    ("It's 3.5 p.m.; don't stop (please) -- ok?",
     "it 's 3.5 p.m. do n't stop -lrb- please -rrb- ok"),
    ("The U.S. team won't win, can't they?",
     "the u.s. team wo n't win ca n't they"),
    ("Mr. Smith's dogs' toys cost $5.50 / 50% off & more.",
     "mr. smith 's dogs toys cost $ 5.50 / 50 % off & more"),
    ('a woman is cutting a t-shirt with 1,000 scissors: yes-no.',
     'a woman is cutting a t-shirt with 1,000 scissors yes-no'),
    ('Gonna wanna gotta cannot',
     'gon na wan na got ta can not'),
    ('someone\'s talking about \'cars\' and "trucks" in a car at 10:30',
     "someone 's talking about cars and trucks in a car at 10:30"),
    ('a man in a (red) shirt [and] {hat}',
     'a man in a -lrb- red -rrb- shirt -lsb- and -rsb- -lcb- hat -rcb-'),
    ('i am so excited!!!',
     'i am so excited !!!'),
    ('what?! really??',
     'what ?! really ??'),
    ('he said "no."',
     'he said no'),
    ('people are dancing: one, two, three...',
     'people are dancing one two three'),
    ('the map, etc...',
     'the map etc.'),
    ('the map etc.... ok',
     'the map etc. ok'),
    ('a man walks....',
     'a man walks'),
    ('“smart quotes” and ‘single’ — em dash … ellipsis café naïve',
     'smart quotes and single em dash ellipsis café naïve'),
    ('hello- -hello --hello a--b 1-2 -5 well-known',
     'hello hello hello a b 1-2 -5 well-known'),
    ("he 's playing ; they 're here",
     "he 's playing they 're here"),
    ("I'm you're we've they'll she'd isn't",
     "i 'm you 're we 've they 'll she 'd is n't"),
    ("a girl's friend is gonna show a video game, etc.",
     "a girl 's friend is gon na show a video game etc."),
    ("rock'n'roll isn't dead",
     "rock 'n' roll is n't dead"),
    ("the '90s were great",
     "the '90s were great"),
    ('a man is walking etc. and then he stops.',
     'a man is walking etc. and then he stops'),
    ('i.e. this is e.g. a test.',
     'i.e. this is e.g. a test'),
    ('he counted 3. then 4..',
     'he counted 3 then 4'),
    ('A.B.C. D.E',
     'a.b.c. d.e'),
    ('x. y. a. the dog.',
     'x. y. a. the dog'),
    ('Two men -- one tall -- walk.',
     'two men one tall walk'),
    ('100% cotton $20 #1 @home ~ok',
     '100 % cotton $ 20 # 1 @home ~ ok'),
    ('wait!. what?. really?!.',
     'wait what really ?!'),
    ('a,b one,two 1,2 a:b a;b',
     'a b one two 1,2 a b a b'),
    ("Someone plays a 3D model, etc... a U.S. soldier isn't cooking an e-mail!",
     "someone plays a 3d model etc. a u.s. soldier is n't cooking an e-mail"),
    ('THE CAT SAT ON THE MAT!',
     'the cat sat on the mat'),
    ('  leading and   trailing spaces  ',
     'leading and trailing spaces'),
    ('a.m and p.m. in Calif. and calif.',
     'a.m and p.m. in calif. and calif.'),
    ('The man., dog.,',
     'the man. dog.'),
]


@pytest.mark.parametrize("caption,expected", PTB_REFERENCE_CASES)
def test_matches_stanford_ptb_tokenizer(caption, expected):
  assert coco_tokenize(caption) == expected


def test_lrb_survives_as_coco_does():
  # coco's list holds "-LRB-" but the tokenizer already lower-cased it.
  assert "-lrb-" in coco_tokenize("a (red) car").split()
  assert "-LRB-" in coco_tokenizer.PUNCTUATIONS


def test_newlines_and_empty():
  assert coco_tokenize("a man\nis walking.") == "a man is walking"
  assert coco_tokenize("") == ""
  assert coco_tokenize(" ... !") == ""


def test_ptb_tokens_keep_punctuation():
  assert coco_tokenizer.ptb_tokenize('He said "no."') == ["he", "said", "``", "no", ".", "''"]


def _caption_corpus(n, seed):
  """Caption-like sentences with contractions, numbers, abbreviations and punctuation."""
  rng = random.Random(seed)
  subjects = ["a man", "A woman", "the dog", "Someone", "A group of kids", "a girl's friend",
              "Mr. Smith", "a U.S. soldier", "People"]
  verbs = ["is playing", "isn't cooking", "plays", "can't find", "is gonna show", "walks past"]
  objects = ["a guitar", "the car's engine", "3 apples", "1,000 dollars", "a t-shirt",
             "her dogs' toys", "5.5 inches", "an e-mail"]
  tails = ["", " in the kitchen", " at 10:30", " (slowly)", ", then leaves", ", etc",
           " -- quickly", " - fast", " for 20% off", " for $5"]
  ends = [".", "", "!", "?", "...", " .", "!!", '."']
  return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
          f"{rng.choice(tails)}{rng.choice(ends)}" for _ in range(n)]


def test_agrees_with_java_ptb_tokenizer_on_a_corpus(tmp_path):
  """Runs the real tokenizer (needs java, which this project's machines have; ~1 s)."""
  from pycocoevalcap.tokenizer import ptbtokenizer  # pylint: disable=g-import-not-at-top
  jars = glob.glob(os.path.join(os.path.dirname(ptbtokenizer.__file__),
                                ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR))
  if not shutil.which("java") or not jars:
    pytest.skip("needs java and pycocoevalcap's CoreNLP jar")
  captions = ["x"] + _caption_corpus(500, seed=0)  # "x" first: the lexer's first line is special.
  path = tmp_path / "captions.txt"
  path.write_text("\n".join(captions))
  result = subprocess.run(["java", "-cp", jars[0], "edu.stanford.nlp.process.PTBTokenizer",
                           "-preserveLines", "-lowerCase", str(path)],
                          capture_output=True, text=True, check=True)
  lines = result.stdout.rstrip("\n").split("\n")
  assert len(lines) == len(captions)
  for caption, line in zip(captions, lines):
    expected = " ".join(w for w in line.rstrip().split(" ")
                        if w not in coco_tokenizer.PUNCTUATIONS)
    assert coco_tokenize(caption) == expected, caption
