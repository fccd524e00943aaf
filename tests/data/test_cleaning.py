import pyarrow as pa

from shopaug.data.cleaning import category_path, clean_text, clean_text_arrow


def test_entities_are_decoded():
    assert clean_text("Salt &amp; Pepper") == "Salt & Pepper"
    assert clean_text("5&quot; ruler &#8211; steel") == '5" ruler \u2013 steel'


def test_double_escaped_entities_are_decoded():
    assert clean_text("Tom &amp;amp; Jerry") == "Tom & Jerry"


def test_tags_are_removed_and_spaces_collapsed():
    assert clean_text("  Line one<br/>line <b>two</b>\n\tend ") == "Line one line two end"


def test_escaped_tags_are_removed_too():
    assert clean_text("&lt;p&gt;Hello&lt;/p&gt;") == "Hello"


def test_a_lone_less_than_sign_is_kept():
    assert clean_text("size < 5 mm") == "size < 5 mm"


def test_none_stays_none_and_markup_only_becomes_empty():
    assert clean_text(None) is None
    assert clean_text("<br>") == ""


def test_arrow_batch_entry_point():
    out = clean_text_arrow(pa.array(["a &amp; b", None, " x "]))
    assert out.to_pylist() == ["a & b", None, "x"]


def test_only_real_tags_are_removed():
    """Issue 20 §2.9: '5 < 10 > 2' became '5 2'."""
    assert clean_text("5 < 10 > 2") == "5 < 10 > 2"
    assert clean_text("<Model X> for a<b and c>d") == "<Model X> for a<b and c>d"
    assert clean_text('<p class="x">Hi<br/>there</p><!-- note -->') == "Hi there"
    assert clean_text('<a href="/x?a=1&b=2" target=_blank>link</a>') == "link"


def test_category_lists_become_paths():
    assert category_path('["Tools", "Widgets"]') == "Tools > Widgets"
    assert category_path('[["A", "B"], ["C"]]') == "A > B"  # several paths: the first
    assert category_path("A > B") == "A > B"
    assert category_path("[not json") == "[not json"
    assert category_path(None) is None
