import pytest

from rollback_pm.trackers.markup import adf_text, to_adf, to_wiki, truncate
from tests.support.fake_jira import adf_validator

BODY = """Production rollback of **api** in **production**.

| Field | Value |
|---|---|
| Deploy SHA | `0123456` |
| Pipeline | https://ci.example.com/repos/1/pipeline/42 |
| Pipe \\| cell | [docs](https://x.example/a_b) |

**Failed smoke step 3 `api health`**: 502 and KEY_COUNT=3 stays, *em* _also_ ~~gone~~

> Warning: evidence for web missing

- `/var/log/azaion/rollback-x.log` (2 bytes)
- second
  - nested *x*

1. one
2. two

---

## Next {steps}

```bash
docker logs api | tail
```
"""


def test_adf_is_valid_against_the_official_schema():
    doc = to_adf(BODY)
    errors = [e.message for e in adf_validator().iter_errors(doc)]
    assert errors == []
    kinds = [node["type"] for node in doc["content"]]
    assert kinds == [
        "paragraph",
        "table",
        "paragraph",
        "blockquote",
        "bulletList",
        "orderedList",
        "rule",
        "heading",
        "codeBlock",
    ]


def test_adf_marks():
    [para] = to_adf("**bold `code`** [t](https://l) x_y_z")["content"]
    assert para["content"] == [
        {"type": "text", "text": "bold ", "marks": [{"type": "strong"}]},
        {"type": "text", "text": "code", "marks": [{"type": "code"}]},  # code takes no other marks but link
        {"type": "text", "text": " "},
        {"type": "text", "text": "t", "marks": [{"type": "link", "attrs": {"href": "https://l"}}]},
        {"type": "text", "text": " x_y_z"},
    ]


def test_adf_table_cells_and_code_block():
    doc = to_adf(BODY)
    table = doc["content"][1]
    header, first, _, third = table["content"]
    assert [c["type"] for c in header["content"]] == ["tableHeader", "tableHeader"]
    assert adf_text(third) == "Pipe | cell docs"
    assert doc["content"][-1] == {
        "type": "codeBlock",
        "attrs": {"language": "bash"},
        "content": [{"type": "text", "text": "docker logs api | tail"}],
    }


@pytest.mark.parametrize("text", ["", "   \n", "\x00\x07"])
def test_adf_of_nothing_is_still_a_document(text):
    doc = to_adf(text)
    assert adf_validator().is_valid(doc)


def test_wiki_markup():
    assert to_wiki(BODY).split("\n") == [
        "Production rollback of *api* in *production*.",
        "",
        "||Field||Value||",
        "|Deploy SHA|{{0123456}}|",
        "|Pipeline|[https://ci.example.com/repos/1/pipeline/42]|",
        "|Pipe \\| cell|[docs|https://x.example/a_b]|",
        "",
        "*Failed smoke step 3* {{api health}}: 502 and KEY\\_COUNT=3 stays, _em_ _also_ -gone-",
        "",
        "{quote}",
        "Warning: evidence for web missing",
        "{quote}",
        "",
        "* {{/var/log/azaion/rollback-x.log}} (2 bytes)",
        "* second",
        "** nested _x_",
        "",
        "# one",
        "# two",
        "",
        "----",
        "",
        "h2. Next \\{steps\\}",
        "",
        "{code:bash}",
        "docker logs api | tail",
        "{code}",
    ]


def test_wiki_escapes_what_would_become_markup():
    assert to_wiki("- not a list in wiki? yes it is") == "* not a list in wiki? yes it is"
    assert to_wiki("a [b] {c} *d e") == "a \\[b\\] \\{c\\} \\*d e"
    assert to_wiki("\\# not a heading") == "\\# not a heading"


def test_truncate_keeps_fences_closed():
    text = "```\n" + "\n".join("x" * 50 for _ in range(100))
    cut = truncate(text, limit=1000, note="see the draft")
    assert len(cut) < 1000 and cut.count("```") == 2 and cut.endswith("see the draft)*")
    assert truncate("short", limit=1000) == "short"
