import pytest

from lab_runtime.service.routing import variant_for


@pytest.mark.parametrize("weight", [0.05, 0.1, 0.5, 0.9])
def test_the_canary_gets_its_share_of_requests(weight: float) -> None:
    n = 20_000
    share = sum(variant_for(f"req-{i}", weight) == "challenger" for i in range(n)) / n
    assert share == pytest.approx(weight, abs=0.015)


def test_the_split_is_sticky_by_request_id() -> None:
    first = [variant_for(f"user-{i}", 0.3) for i in range(500)]
    assert first == [variant_for(f"user-{i}", 0.3) for i in range(500)]


def test_raising_the_weight_only_moves_requests_to_the_challenger() -> None:
    ids = [f"r{i}" for i in range(2000)]
    at_10 = {i for i in ids if variant_for(i, 0.1) == "challenger"}
    at_30 = {i for i in ids if variant_for(i, 0.3) == "challenger"}
    assert at_10 < at_30


def test_weight_zero_and_one_are_absolute() -> None:
    assert all(variant_for(f"x{i}", 0.0) == "champion" for i in range(1000))
    assert all(variant_for(f"x{i}", 1.0) == "challenger" for i in range(1000))
