"""tools/readme_report.py: the README updater's sections and its errors (what is missing, what to run)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import readme_report as readme  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_sections_in_order_one_level_down():
  md = "# r\n\n## Claims\n\n- a\n\n## Scaling\n\nx\n\n## Adaptation ablation (t)\n\n| a |\n"
  out = readme.sections(md, ("Adaptation ablation", "Claims"))
  assert out.index("### Adaptation ablation (t)") < out.index("### Claims")
  assert "Scaling" not in out and "| a |" in out and "- a" in out


def test_missing_section_report_or_markers_are_named(tmp_path, capsys):
  with pytest.raises(readme.ReadmeError, match="Dual encoder"):
    readme.sections("## Claims\n", ("Claims", "Dual encoder by caption source"))
  (tmp_path / "README.md").write_text(f"{readme.BEGIN}\n{readme.END}\n")
  assert readme.main(["--workdir", str(tmp_path / "nowhere"), "--readme",
                      str(tmp_path / "README.md")]) == 2
  assert "no complete pipeline report" in capsys.readouterr().err
  (tmp_path / "w").mkdir()
  (tmp_path / "README.md").write_text("no markers\n")
  for name in ("report.md", "report.json", "scaling.png"):
    (tmp_path / "w" / name).write_text("{}")
  with pytest.raises(readme.ReadmeError, match="lacks the markers"):
    readme.update(str(tmp_path / "README.md"), str(tmp_path / "w"), str(tmp_path / "f"))
