"""The progress callbacks stages share: pieces of a bar, clamped, in order."""

from shopaug.progress import notifier, quiet, shares, within


def test_a_missing_callback_is_quiet():
    assert notifier(None) is quiet
    marks = []
    assert notifier(lambda s, f: marks.append(f)) is not quiet


def test_pieces_map_their_fraction_into_their_share_of_the_whole():
    seen = []
    pieces = shares(lambda stage, f: seen.append((stage, round(f, 3))), 0.2, 0.6, 3, "train ")
    pieces[0]("a", 0.0)
    pieces[1]("b", 0.5)
    pieces[2]("c", 1.0)
    assert seen == [("train a", 0.2), ("train b", 0.5), ("train c", 0.8)]


def test_fractions_outside_zero_to_one_are_clamped():
    seen = []
    piece = within(lambda stage, f: seen.append(f), 0.5, 0.5)
    piece("x", 2.0)
    piece("x", -1.0)
    assert seen == [1.0, 0.5]
