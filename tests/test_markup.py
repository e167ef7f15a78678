"""Text from files and users shown literally: in HTML, in Panel's Markdown, in a download link."""

import html
from html.parser import HTMLParser

import panel as pn
import pytest

from recogan_app.markup import download_link, escape_html, escape_markdown

NASTY = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>alert(1)</script>",
    "a\" onmouseover=\"alert(1)",
    "it's & <b>bold</b> &amp; &lt;",
    "*star* _under_ __strong__ `tick` ~~gone~~",
    "[click](javascript:alert(1)) ![i](x) <https://example.com> www.example.com",
    "# heading | table | --- > quote",
    "1. list\n- item\n    code\n\n<div onclick=alert(1)>",
    "back\\slash \\*not\\* $$x^2$$ {x} :smile: [^1]",
    "Ξc+ p_T [GeV/c] ≥ 2",
]


class Collect(HTMLParser):
    """The elements (tag, attributes) and the text of an HTML fragment."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


@pytest.mark.parametrize("text", NASTY)
def test_escape_html_is_the_stdlib_reference(text):
    assert escape_html(text) == html.escape(text, quote=True)
    parsed = Collect(f'<p title="{escape_html(text)}">{escape_html(text)}</p>')
    assert parsed.tags == [("p", {"title": text})] and parsed.text == text


def test_escape_html_takes_any_object():
    assert escape_html(3) == "3" and escape_html(None) == "None"


@pytest.mark.parametrize("text", NASTY)
def test_escape_markdown_renders_literally_in_panels_markdown(text):
    """Through the parser Panel's Markdown pane uses: one paragraph, no other element, the text as
    given (line breaks as spaces)."""
    pane = pn.pane.Markdown(escape_markdown(text), disable_math=True)
    rendered = html.unescape(pane._transform_object(pane.object)["object"])  # the pane escapes it for transport
    parsed = Collect(rendered)
    assert [tag for tag, _ in parsed.tags] == ["p"], rendered
    assert parsed.text.strip() == " ".join(line.strip() for line in text.splitlines() if line.strip())


def test_download_link_encodes_the_address_and_escapes_the_text():
    name = 'a b<img src=x onerror=alert(1)>"#?.csv'
    parsed = Collect(download_link("exports", name))
    assert parsed.tags == [("a", {"href": "exports/a%20b%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%23%3F.csv",
                                  "download": name})]
    assert parsed.text == name
    assert Collect(download_link("exports", "../../etc/passwd")).tags[0][1]["href"] == "exports/..%2F..%2Fetc%2Fpasswd"
