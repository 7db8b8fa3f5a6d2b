"""Where agents call the coordinator back: never an address they cannot reach."""

import pytest

from coordinator.config import CoordinatorConfig


def test_the_callback_base_url_is_reachable_or_refused():
    assert CoordinatorConfig(host="10.0.0.1", port=8080).base_url() == "http://10.0.0.1:8080"
    assert CoordinatorConfig(advertise_url="http://mn:8080/").base_url() == "http://mn:8080"
    assert CoordinatorConfig(port=0).base_url() is None  # a test server sets it later
    with pytest.raises(ValueError, match="--advertise-url"):
        CoordinatorConfig(host="0.0.0.0", port=8080).base_url()
