"""Print the service's OpenAPI document (checked into docs/openapi.json):

    PYTHONPATH=. python -m service.openapi > docs/openapi.json
"""

from __future__ import annotations

import json
import sys

from service.app import create_app
from service.settings import Settings


def document() -> str:
    return json.dumps(create_app(Settings(db="unused.db")).openapi(), indent=2,
                      sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(document())
