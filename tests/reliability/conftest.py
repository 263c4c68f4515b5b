import json

import pytest


def strict_json_lines(path):
    """Every line of a JSONL file parsed strictly: the non-JSON tokens NaN / Infinity raise."""

    def bad(token):
        raise ValueError(f"{path} holds the non-JSON token {token}")

    return [json.loads(line, parse_constant=bad) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def strict_json():
    return strict_json_lines
