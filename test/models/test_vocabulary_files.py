"""Vocabulary files (``Vocabulary.from_file``, ``parse_vocabulary_text``) without ROS: the formats,
the fields and values of ``ovseg/VocabularyClass`` (THING_AUTO as in a service request), the
request limits, and refusals that never repeat the file's content."""

from __future__ import annotations

import json

import pytest

from ovseg_models.vocabulary import (
    MAX_VOCABULARY_FILE_BYTES,
    STUFF,
    THING,
    THING_AUTO,
    UNSEEN,
    Vocabulary,
    VocabularyClass,
    VocabularyError,
    parse_vocabulary_text,
    resolve_thing,
)

SECRET = "secret-token-1234"


def test_txt_lines_tags_comments_and_thing_auto(tmp_path):
    f = tmp_path / "v.txt"
    f.write_text("# kitchen\nwall, walls [stuff]\n\nmug, cup  # a comment\nfloor\nsky [THING]\ncoffee maker\n")
    v = Vocabulary.from_file(f)
    assert v.names == ["wall", "mug", "floor", "sky", "coffee maker"]
    assert v[0].synonyms == ("wall", "walls") and v[1].synonyms == ("mug", "cup")
    # untagged: THING_AUTO, as a request without `thing` (floor is COCO stuff, cup a COCO thing,
    # a name no dataset has is a thing); tags win over the datasets
    assert v.is_thing == [False, True, False, True, True]
    assert [c.seen for c in v] == [None] * 5


def test_yaml_and_json_items_have_the_message_fields(tmp_path):
    items = [
        "wall, walls",
        {"name": "mug", "synonyms": ["cup"]},
        {"name": "rug", "thing": "stuff", "seen": "unseen"},
        {"name": "sky", "thing": 1, "seen": 1},
        {"name": "table", "thing": "auto", "seen": 0},
    ]
    (tmp_path / "v.json").write_text(json.dumps(items))
    (tmp_path / "v.yaml").write_text(
        "classes:\n"
        "  - wall, walls\n"
        "  - {name: mug, synonyms: [cup]}\n"
        "  - {name: rug, thing: stuff, seen: unseen}\n"
        "  - {name: sky, thing: 1, seen: 1}\n"
        "  - {name: table, thing: auto, seen: 0}\n"
    )
    expected = Vocabulary.create(
        [
            VocabularyClass.from_fields("wall", ["walls"]),
            VocabularyClass.from_fields("mug", ["cup"]),
            VocabularyClass.from_fields("rug", thing=STUFF, seen=UNSEEN),
            VocabularyClass.from_fields("sky", thing=THING, seen=1),
            VocabularyClass.from_fields("table", thing=THING_AUTO),
        ]
    )
    for name in ("v.json", "v.yaml"):
        v = Vocabulary.from_file(tmp_path / name)
        assert v == expected, name
        assert v.is_thing == [False, True, False, True, resolve_thing(["table"])]
        assert [c.seen for c in v] == [None, None, False, True, None]
        assert not v.trusted


def test_templates_and_the_text_parser(tmp_path):
    f = tmp_path / "v.yml"
    f.write_text("- cat\n- dog\n")
    assert Vocabulary.from_file(f, templates=["a photo of a {}."]).templates == ("a photo of a {}.",)
    assert parse_vocabulary_text("cat\ndog [stuff]\n", "txt").is_thing == [True, False]
    assert parse_vocabulary_text('["cat"]', ".JSON").names == ["cat"]
    with pytest.raises(VocabularyError, match="unknown vocabulary file format"):
        parse_vocabulary_text("cat", "csv")


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("bool.yaml", "- {name: cat, seen: false}\n", "seen must be 0 \\(auto\\), 1 \\(seen\\) or 2 \\(unseen\\)"),
        ("bad.yaml", "- {name: cat, thing: 3}\n", "thing must be 0 \\(auto\\), 1 \\(thing\\) or 2 \\(stuff\\)"),
        ("old.yaml", "- {name: cat, is_thing: false}\n", "unknown key.*name, synonyms, thing, seen"),
        ("top.yaml", "classes: [cat]\nextra: 1\n", "the one key"),
        ("scalar.json", '"cat"', "expected a list of classes"),
        ("syn.yaml", "- {name: cat, synonyms: kitty}\n", "synonyms must be a list"),
        ("item.json", "[1]", "item 0 must be a string or a mapping"),
        ("dup.txt", "cat\nCat\n", "duplicate class name"),
        ("empty.txt", "# nothing\n", "empty"),
        ("blank.txt", "cat\n , \n", "line 2: class 1 has an empty name"),
        ("ctrl.txt", "cat\n\x01dog\n", "control character on line 2"),
        ("long.txt", "x" * 2000 + "\n", "line 1 has 2000 characters"),
        ("broken.yaml", "- [cat\n", "ParserError, line 2"),
        ("broken.json", '["cat",', "JSONDecodeError, line 1"),
        ("v.csv", "cat\n", "use one of .txt, .yaml, .yml, .json"),
    ],
)
def test_refusals_name_the_rule(tmp_path, name, content, reason):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(VocabularyError, match=reason) as e:
        Vocabulary.from_file(f)
    assert str(f) in str(e.value)


def test_refusals_never_repeat_the_content(tmp_path):
    cases = {
        "dup.txt": f"{SECRET}\n{SECRET}\n",
        "bad.yaml": f"- {{name: cat, thing: {SECRET}}}\n",
        "key.yaml": f"- {{name: cat, {SECRET}: 1}}\n",
        "broken.yaml": f"- [{SECRET}\n",
        "broken.json": f'["{SECRET}",',
        "ctrl.txt": f"{SECRET}\x00\n",
        "long.txt": SECRET * 200,
    }
    for name, content in cases.items():
        f = tmp_path / name
        f.write_text(content)
        with pytest.raises(VocabularyError) as e:
            Vocabulary.from_file(f)
        assert "secret" not in str(e.value), (name, str(e.value))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"cat\n\xff" + SECRET.encode())
    with pytest.raises(VocabularyError, match="not UTF-8 text, byte 4") as e:
        Vocabulary.from_file(binary)
    assert "secret" not in str(e.value)


def test_size_limit_and_missing_file(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("cat\n" * (MAX_VOCABULARY_FILE_BYTES // 4 + 1))
    with pytest.raises(VocabularyError, match=f"more than {MAX_VOCABULARY_FILE_BYTES} bytes"):
        Vocabulary.from_file(big)
    with pytest.raises(VocabularyError, match="cannot be read"):
        Vocabulary.from_file(tmp_path / "missing.txt")


def test_the_readme_example(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "name: rug" in b]
    f = tmp_path / "v.yaml"
    f.write_text(block)
    v = Vocabulary.from_file(f)
    assert v.names == ["wall", "mug", "rug"] and v.is_thing == [False, True, False]
    assert [c.seen for c in v] == [None, None, False]
