"""Create a GCS bucket if it does not exist (used by docker-compose's airflow-init against the emulator).

python scripts/create_bucket.py BUCKET        # STORAGE_EMULATOR_HOST selects the emulator
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = sys.argv[1]
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    client = (
        storage.Client(
            project="segmentation-local", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator}
        )
        if emulator
        else storage.Client()
    )
    if client.lookup_bucket(bucket) is None:
        client.create_bucket(bucket)
        print(f"created bucket {bucket}")
    else:
        print(f"bucket {bucket} exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
