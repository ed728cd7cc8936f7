"""Numbers read the Mandarin way from single-numeral recordings (checked by hand against how
a person says them: 十二, 二十, 一百零五, 一千零五十, 一万零五)."""

from __future__ import annotations

import pytest

from cc_core.flow.spoken import files, numerals

SAID = {
    0: [0], 1: [1], 9: [9], 10: [10], 12: [10, 2], 20: [2, 10], 21: [2, 10, 1],
    100: [1, 100], 105: [1, 100, 0, 5], 110: [1, 100, 1, 10], 112: [1, 100, 1, 10, 2],
    200: [2, 100], 1000: [1, 1000], 1005: [1, 1000, 0, 5], 1050: [1, 1000, 0, 5, 10],
    1500: [1, 1000, 5, 100], 1010: [1, 1000, 0, 1, 10], 9999: [9, 1000, 9, 100, 9, 10, 9],
    10000: [1, 10000], 10005: [1, 10000, 0, 5], 10500: [1, 10000, 0, 5, 100],
    12000: [1, 10000, 2, 1000], 10010: [1, 10000, 0, 1, 10], 100000: [10, 10000],
    120034: [10, 2, 10000, 0, 3, 10, 4],
}


@pytest.mark.parametrize(("n", "expected"), sorted(SAID.items()))
def test_numbers_are_read_as_a_person_reads_them(n: int, expected: list[int]) -> None:
    assert numerals(n) == expected


def test_files_come_from_a_folder_or_a_template() -> None:
    assert files(12, "/sounds/zh/digits/") == ["/sounds/zh/digits/10.wav",
                                               "/sounds/zh/digits/2.wav"]
    assert files(3, "tone_stream://%(100,0,{n})") == ["tone_stream://%(100,0,3)"]


def test_a_number_out_of_range_is_refused_with_the_range() -> None:
    with pytest.raises(ValueError, match="from 0 to 99999999"):
        numerals(-1)
