"""The readers parse hand-written samples in each data set's published layout, and name bad lines.

The samples under tests/data/testdata/annotations/ were written by hand from each data set's
documentation (docs/datasets.md cites it); the expected values below are read off those files.
"""
import datetime
import os

import numpy as np
import pytest

from vidistill.data import annotations
from vidistill.data.annotations import common
from vidistill.data.records import AnnotationError

DATA = os.path.join(os.path.dirname(__file__), "testdata", "annotations")


def _path(*parts):
  return os.path.join(DATA, *parts)


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text, encoding="utf-8")
  return str(path)


# ------------------------------------------------------------------------------------- common


def test_parse_timestamp_matches_timedelta():
  rng = np.random.default_rng(0)
  for _ in range(200):
    h, m, s, ms = (int(rng.integers(0, 30)), int(rng.integers(0, 60)), int(rng.integers(0, 60)),
                   int(rng.integers(0, 1000)))
    text = f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"
    expected = datetime.timedelta(hours=h, minutes=m, seconds=s, milliseconds=ms).total_seconds()
    assert annotations.parse_timestamp(text) == pytest.approx(expected, abs=1e-9)
  assert annotations.parse_timestamp("07:33.5") == pytest.approx(453.5)
  assert annotations.parse_timestamp("12") == 12.0


@pytest.mark.parametrize("bad", ["", "1:2:3:4", "00:07:33,689", "ab:cd", "00:00:75.0", "-1"])
def test_parse_timestamp_rejects(bad):
  with pytest.raises(ValueError, match="timestamp"):
    annotations.parse_timestamp(bad)


@pytest.mark.parametrize("name,split", [
    ("vatex_training_v1.0.json", "train"), ("vatex_validation_v1.0.json", "val"),
    ("vatex_public_test_english_v1.1.json", "test"), ("train_q.json", "train"),
    ("MSRVTT_JSFUSION_test.csv", "test"), ("OVIS_train", "train"), ("foo.json", "")])
def test_split_from_filename(name, split):
  assert common.split_from_filename(name) == split


def test_csv_line_numbers_count_quoted_newlines(tmp_path):
  path = _write(tmp_path, "a.csv", 'a,b\n1,"two\nlines"\n\n3,4\n')
  assert [line for line, _ in common.iter_csv(path, ["a", "b"])] == [2, 5]


@pytest.mark.parametrize("read, content, line, offset", [
    (lambda p: list(common.iter_jsonl(p)), '{"a": 1}\n{"b": "caf\u00e9"}\n', 2, 19),
    (lambda p: list(common.iter_csv(p, ["id"])), "id\nx\n\u00e9t\u00e9\n", 3, 5),
    (common.load_json, '{\n"a": "\u00e9"}', 2, 8),
])
def test_text_that_is_not_utf8_names_line_and_byte_offset(tmp_path, read, content, line, offset):
  path = tmp_path / "latin1.txt"
  path.write_bytes(content.encode("latin-1"))
  with pytest.raises(AnnotationError) as info:
    read(str(path))
  assert (info.value.path, info.value.line) == (str(path), line)
  assert f"byte 0xe9 at byte offset {offset}" in info.value.reason
  assert path.read_bytes()[offset] == 0xE9


def test_missing_file_is_an_annotation_error(tmp_path):
  with pytest.raises(AnnotationError, match="no such annotation file"):
    annotations.READERS["vatex"](str(tmp_path / "nope.json"))


# ------------------------------------------------------------------------------------- MSR-VTT


def test_msrvtt_videodatainfo():
  records = annotations.read_msrvtt(_path("msrvtt", "MSRVTT_data.json"))
  assert [r.video_id for r in records] == ["video0", "video1", "video6513", "video7020",
                                           "video9770"]
  first = records[0]
  assert first.captions == ("a cartoon of a dog running in a park", "an animated dog chases a ball")
  assert first.split == "train" and first.start is None and first.end is None
  assert first.extra["youtube_id"] == "AbCdEfGhIj0"
  assert (first.extra["source_start"], first.extra["source_end"]) == (137.72, 149.44)
  assert first.extra["category"] == 9 and first.extra["sen_ids"] == (0, 1)
  test = annotations.read_msrvtt(_path("msrvtt", "MSRVTT_data.json"), split="test")
  assert [r.video_id for r in test] == ["video7020", "video9770"]
  val = annotations.read_msrvtt(_path("msrvtt", "MSRVTT_data.json"), split="val")
  assert [r.video_id for r in val] == ["video6513"]


def test_msrvtt_train9k_takes_captions_from_sibling_json():
  records = annotations.read_msrvtt_train9k(_path("msrvtt", "MSRVTT_train.9k.csv"))
  assert [r.video_id for r in records] == ["video0", "video1"]
  assert records[1].captions == ("a man is cooking noodles in a kitchen", "someone stirs a pot")
  assert {r.split for r in records} == {"train"}


def test_msrvtt_1ka():
  plain = annotations.read_msrvtt_1ka(_path("msrvtt", "MSRVTT_JSFUSION_test.csv"))
  assert [(r.video_id, r.captions) for r in plain] == [
      ("video9770", ("a person is connecting something to system",)),
      ("video7020", ("two men play tennis",))]
  assert plain[0].extra == {"key": "ret0", "vid_key": "msr9770"} and plain[0].split == "test"
  full = annotations.read_msrvtt_1ka(_path("msrvtt", "MSRVTT_JSFUSION_test.csv"),
                                     captions_path=_path("msrvtt", "MSRVTT_data.json"))
  assert full[1].captions == ("two men play tennis", "players hit a ball over a net")


def test_msrvtt_train9k_unknown_video_names_line(tmp_path):
  _write(tmp_path, "MSRVTT_data.json",
         open(_path("msrvtt", "MSRVTT_data.json"), encoding="utf-8").read())
  path = _write(tmp_path, "MSRVTT_train.9k.csv", "video_id\nvideo0\nvideo4242\n")
  with pytest.raises(AnnotationError, match=r"MSRVTT_train\.9k\.csv:3: video 'video4242'"):
    annotations.read_msrvtt_train9k(path)


def test_msrvtt_sentence_of_unknown_video(tmp_path):
  path = _write(tmp_path, "v.json", '{"videos": [{"video_id": "video0", "split": "train"}],'
                ' "sentences": [{"caption": "a", "video_id": "video0"},'
                ' {"caption": "b", "video_id": "video9"}]}')
  with pytest.raises(AnnotationError, match=r"sentences\[1\]: video_id 'video9' is not listed"):
    annotations.read_msrvtt(path)


# ----------------------------------------------------------------------------------------- VATEX


def test_vatex_ids_give_window_with_underscored_youtube_ids():
  records = annotations.read_vatex(_path("vatex", "vatex_training_v1.0.json"))
  assert [r.video_id for r in records] == ["Ptf_2VRj-V0_000122_000132", "-1aBcD2eFgh_000005_000015"]
  r = records[0]
  assert r.split == "train" and len(r.captions) == 3
  assert r.captions[0] == "A man is standing on a diving board and jumps into the pool."
  assert r.extra["youtube_id"] == "Ptf_2VRj-V0"
  assert (r.extra["source_start"], r.extra["source_end"]) == (122.0, 132.0)
  assert r.extra["zh_captions"][0] == "一个男人站在跳板上跳进了泳池。"
  assert r.start is None  # The clip file is the window already.
  zh = annotations.read_vatex(_path("vatex", "vatex_training_v1.0.json"), language="zh")
  assert zh[1].captions == ("两个孩子在海滩上堆沙堡。", "孩子们把湿沙堆成塔。")
  test = annotations.read_vatex(_path("vatex", "vatex_public_test_english_v1.1.json"))
  assert test[0].split == "test" and test[0].extra["youtube_id"] == "xYz123AbC_d"


@pytest.mark.parametrize("text,match", [
    ('[{"videoID": "abc_12_13", "enCap": []}]', r"entry 0: key 'videoID': clip id 'abc_12_13'"),
    ('[{"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": "one"}]', r"entry 0: key 'enCap' is str"),
    ('[{"enCap": ["x"]}]', r"entry 0: missing key 'videoID'"),
    ('[{"videoID": "Ptf_2VRj-V0_000132_000122"}]', r"window \[132, 122\]"),
    ('[{"videoID": "a_000001_000002"},\n {"videoID": }]', r":2: invalid JSON"),
])
def test_vatex_errors_name_entry_and_key(tmp_path, text, match):
  path = _write(tmp_path, "vatex_training_v1.0.json", text)
  with pytest.raises(AnnotationError, match=match) as info:
    annotations.read_vatex(path)
  assert info.value.path == path


# ------------------------------------------------------------------------------- Spoken Moments


def test_smit_reads_split_list_and_transcripts():
  records = annotations.read_smit(_path("smit", "train_set.txt"))
  assert [r.video_id for r in records] == ["training/bowing/yt-0aB1cD2eF3g_12",
                                           "training/juggling/yt-Hh4Ii5Jj6Kk_3"]
  assert records[0].captions == ("a man is bowing to an audience on a stage",)
  assert records[1].captions == ("a person juggles three balls in a backyard",)
  assert {r.split for r in records} == {"train"}


def test_smit_missing_transcript_names_line(tmp_path):
  path = _write(tmp_path, "val_set.txt", "\nvalidation/x/yt-a_1\n")
  with pytest.raises(AnnotationError, match=r"val_set\.txt:2: no transcript .*yt-a_1\.txt"):
    annotations.read_smit(path)


# ----------------------------------------------------------------------------------------- VidLN


def test_vidln_actor_narratives():
  records = annotations.read_vidln(_path("vidln", "OVIS_train_sample.jsonl"))
  assert [r.video_id for r in records] == ["c1a40349", "5d24e4ea"]
  r = records[0]
  assert r.captions == ("A group of people is cycling on the grey road.",
                        "There are trees beside the road.")
  assert r.extra["actor_names"] == ("Group of people", "background")
  assert r.extra["dataset_id"] == "OVIS_train" and r.split == "train"
  assert r.path == os.path.join("OVIS_train", "c1a40349")
  assert records[1].extra["annotator_id"] is None


def test_vidln_bad_line_is_named(tmp_path):
  good = open(_path("vidln", "OVIS_train_sample.jsonl"), encoding="utf-8").readline()
  bad = '{"video_id": "v", "actor_narratives": [{"actor_name": "Man"}]}\n'
  path = _write(tmp_path, "oops_val.jsonl", good + bad)
  with pytest.raises(AnnotationError, match=r"oops_val\.jsonl:2: actor_narratives\[0\]: missing "
                     r"key 'caption'"):
    annotations.read_vidln(path)


# ----------------------------------------------------------------------------------------- QA


def test_nextqa_multiple_choice_with_video_map():
  records = annotations.read_nextqa(_path("nextqa", "val.csv"))
  assert len(records) == 2
  r = records[1]
  assert r.video_id == "6233408665" and r.path == "1150/6233408665" and r.split == "val"
  assert r.question == ("what did the people on the sofa do after the lady in pink finished "
                        "singing, at the end")
  assert r.candidates == ("sitting.", "give it to the girl.", "take music sheet.", "clap.",
                          "walk in circles.")
  assert r.answer_index == 3 and r.answer == "clap."
  assert r.extra == {"qid": "8", "type": "TN", "question_id": "6233408665_8", "frame_count": 1052,
                     "width": 640, "height": 360}


def test_nextqa_open_ended():
  (r,) = annotations.read_nextqa(_path("nextqa", "oe_val.csv"))
  assert r.answer == "guitar" and r.candidates == () and r.answer_index is None
  assert r.extra["additional_ref_answer"] == "instrument" and r.path == "1023/4010069381"


@pytest.mark.parametrize("row,match", [
    ("1,10,64,64,what,7,0,CW,a,b,c,d,e", r"val\.csv:3: answer index 7 is not in 0\.\.4"),
    ("1,10,64,64,what,x,0,CW,a,b,c,d,e", r"val\.csv:3: column 'answer' is 'x'"),
    ("1,10,64,64,what,0,0,CW,a,b,c,d", r"val\.csv:3: expected 13 fields"),
])
def test_nextqa_errors(tmp_path, row, match):
  header = "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
  path = _write(tmp_path, "val.csv", header + "1,10,64,64,why,0,1,CW,a,b,c,d,e\n" + row + "\n")
  with pytest.raises(AnnotationError, match=match):
    annotations.read_nextqa(path)


def test_nextqa_wrong_header(tmp_path):
  path = _write(tmp_path, "val.csv", "video,question\n1,why\n")
  with pytest.raises(AnnotationError, match=r"val\.csv:1: header .* lacks column\(s\) \['answer'"):
    annotations.read_nextqa(path)


def test_activitynet_qa_joins_questions_and_answers():
  records = annotations.read_activitynet_qa(_path("activitynet_qa", "test_q.json"))
  assert [(r.video_id, r.question, r.answer) for r in records] == [
      ("AbCdEfGhIjK", "what is the person in red doing", "surfing"),
      ("AbCdEfGhIjK", "is the person outdoors", "yes"),
      ("Zz9Yy8Xx7Ww", "how many dogs appear", "2")]
  assert records[2].extra == {"question_id": "v_Zz9Yy8Xx7Ww_0", "type": 7,
                              "file_stems": ("v_Zz9Yy8Xx7Ww",)}
  assert records[0].split == "test"


def test_activitynet_qa_unanswered_question(tmp_path):
  q = _write(tmp_path, "val_q.json", '[{"video_name": "a", "question": "q", "question_id": "x"}]')
  _write(tmp_path, "val_a.json", '[{"answer": "y", "type": 3, "question_id": "z"}]')
  with pytest.raises(AnnotationError, match=r"entry 0: question_id 'x' has no answer"):
    annotations.read_activitynet_qa(q)


def test_msrvtt_qa():
  records = annotations.read_msrvtt_qa(_path("msrvtt_qa", "test_qa.json"))
  assert [(r.video_id, r.question, r.answer) for r in records] == [
      ("video7020", "what are two men playing?", "tennis"),
      ("video9770", "who plugs a cable into a computer?", "man")]
  assert records[1].extra == {"question_id": "158582", "category_id": 1}
  assert records[0].split == "test"


def test_msrvtt_qa_bad_video_id(tmp_path):
  path = _write(tmp_path, "train_qa.json", '[{"answer": "a", "question": "q", "video_id": 1.5}]')
  with pytest.raises(AnnotationError, match=r"entry 0: key 'video_id' is float"):
    annotations.read_msrvtt_qa(path)


# ------------------------------------------------------------------------------------ Kinetics


def test_kinetics_labelled_and_test_files():
  records = annotations.read_kinetics(_path("kinetics", "validate.csv"))
  assert [(r.video_id, r.label, r.split) for r in records] == [
      ("---QUuC4vJs_000084_000094", "testifying", "validate"),
      ("--nQbRBEz2s_000104_000114", "air drumming", "validate")]
  assert records[0].extra == {"youtube_id": "---QUuC4vJs", "source_start": 84.0,
                              "source_end": 94.0}
  (t,) = annotations.read_kinetics(_path("kinetics", "test.csv"))
  assert t.label is None and t.extra["is_cc"] == 0 and t.video_id == "-3B32lodo2M_000059_000069"


def test_kinetics_bad_time(tmp_path):
  path = _write(tmp_path, "train.csv", "label,youtube_id,time_start,time_end,split\n"
                "a,b,1,2,train\na,c,ten,20,train\n")
  with pytest.raises(AnnotationError, match=r"train\.csv:3: column 'time_start' is 'ten'"):
    annotations.read_kinetics(path)


# --------------------------------------------------------------------------- InternVid, VideoCC


def test_internvid_windows_from_timestamps():
  records = annotations.read_internvid(_path("internvid", "InternVid-10M-FLT-sample.jsonl"))
  assert [r.video_id for r in records] == ["Aa1Bb2Cc3Dd", "Aa1Bb2Cc3Dd"]
  assert (records[0].start, records[0].end) == pytest.approx((320.12, 324.32))
  assert (records[1].start, records[1].end) == pytest.approx((3723.004, 3730.5))
  assert records[0].captions == ("a young man standing in front of a lake",)
  assert records[0].extra["UMT_Score"] == 0.401367
  assert len({r.extra["clip_id"] for r in records}) == 2


def test_internvid_bad_timestamp_names_line(tmp_path):
  path = _write(tmp_path, "iv.jsonl", '{"YoutubeID": "a", "Start_timestamp": "00:00:01.000", '
                '"End_timestamp": "00:00:02.000", "Caption": "c"}\n{"YoutubeID": "a", '
                '"Start_timestamp": "1 minute", "End_timestamp": "00:00:02.000", "Caption": "c"}\n')
  with pytest.raises(AnnotationError, match=r"iv\.jsonl:2: column 'Start_timestamp'"):
    annotations.read_internvid(path)


def test_videocc_unquoted_commas_and_urls():
  records = annotations.read_videocc(_path("videocc", "video_cc_public.csv"))
  assert [r.video_id for r in records] == ["Ee4Ff5Gg6Hh", "Ee4Ff5Gg6Hh", "Ii7Jj8Kk9Ll"]
  assert (records[0].start, records[0].end) == pytest.approx((1.835, 11.835))
  assert records[1].captions == ("a beach with palm trees, sand and blue water",)
  assert records[2].captions == ("a cat, sitting on a windowsill",)
  assert records[2].extra["url"] == "https://www.youtube.com/watch?v=Ii7Jj8Kk9Ll"


def test_videocc_short_line(tmp_path):
  path = _write(tmp_path, "cc.csv", "a,0,1000000,x\nb,0,1000000\n")
  with pytest.raises(AnnotationError, match=r"cc\.csv:2: expected 4 fields"):
    annotations.read_videocc(path)


# ------------------------------------------------------------------------------------------ COCO


def test_coco_captions_grouped_per_image():
  records = annotations.read_coco_captions(_path("coco", "captions_val2017.json"))
  assert [(r.video_id, r.path) for r in records] == [("391895", "000000391895.jpg"),
                                                     ("522418", "000000522418.jpg")]
  assert records[0].captions == ("A man with a red helmet on a small moped on a dirt road.",
                                 "Man riding a motor bike on a dirt road on the countryside.")
  assert records[0].split == "val" and records[0].extra["width"] == 640


def test_coco_caption_of_unknown_image(tmp_path):
  path = _write(tmp_path, "captions_train2017.json", '{"images": [{"id": 1, "file_name": "a.jpg"}],'
                ' "annotations": [{"image_id": 2, "id": 5, "caption": "x"}]}')
  with pytest.raises(AnnotationError, match=r"annotations\[0\]: image_id 2 is not listed"):
    annotations.read_coco_captions(path)


# ----------------------------------------------------------------------------------- the table

SAMPLES = {
    "msrvtt": ("msrvtt", "MSRVTT_data.json"), "msrvtt_train9k": ("msrvtt", "MSRVTT_train.9k.csv"),
    "msrvtt_1ka": ("msrvtt", "MSRVTT_JSFUSION_test.csv"),
    "vatex": ("vatex", "vatex_training_v1.0.json"), "smit": ("smit", "train_set.txt"),
    "vidln": ("vidln", "OVIS_train_sample.jsonl"), "nextqa": ("nextqa", "val.csv"),
    "activitynet_qa": ("activitynet_qa", "test_q.json"), "msrvtt_qa": ("msrvtt_qa", "test_qa.json"),
    "kinetics": ("kinetics", "validate.csv"),
    "internvid": ("internvid", "InternVid-10M-FLT-sample.jsonl"),
    "videocc": ("videocc", "video_cc_public.csv"),
    "coco_captions": ("coco", "captions_val2017.json"),
}


def test_every_reader_has_a_sample_and_reads_it_by_name():
  assert set(SAMPLES) == set(annotations.READERS)
  for name, parts in SAMPLES.items():
    records = annotations.READERS[name](_path(*parts))
    assert records and all(isinstance(r, annotations.VideoRecord) for r in records), name
    assert all(r.captions or r.question or r.label for r in records), name


def test_record_id_is_unique_where_videos_repeat():
  for name in ("internvid", "videocc", "nextqa", "activitynet_qa", "msrvtt_qa", "vatex", "msrvtt"):
    records = annotations.READERS[name](_path(*SAMPLES[name]))
    ids = [annotations.record_id(r) for r in records]
    assert len(set(ids)) == len(ids), name
