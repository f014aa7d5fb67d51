"""botocore service models shipped with certsmith: its own API (``Certsmith.*``, SigV4 service ``certsmith``).

Point botocore at them with ``AWS_DATA_PATH=$(python -c 'import certsmith.models as m; print(m.MODELS_PATH)')``
(the AWS CLI and boto3 then know the ``certsmith`` service), or add ``MODELS_PATH`` to a loader's search paths.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODELS_PATH", "SERVICE"]

MODELS_PATH = Path(__file__).resolve().parent
SERVICE = "certsmith"
