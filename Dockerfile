# Customer-segmentation Airflow image.
# The base tag must match the apache-airflow pin in requirements.txt
# (checked by tests/test_containers.py). Two stages: `runtime` (the default, last stage) is the production
# image with the runtime requirements only (no test tools, no emulator); `gcs-emulator` is the local stack's
# GCS stand-in (docker-compose's gcs-emulator service builds it with `target: gcs-emulator`).

FROM apache/airflow:3.3.2-python3.11 AS gcs-emulator
USER airflow
COPY --chown=airflow:root constraints.txt /opt/airflow/
RUN pip install --no-cache-dir gcp-storage-emulator -c /opt/airflow/constraints.txt

FROM apache/airflow:3.3.2-python3.11 AS runtime

# Official image convention: install Python packages as the airflow user.
USER airflow

# Dependencies first so this layer is cached across code changes.
# constraints.txt is the full uv lock for Python 3.11.
COPY --chown=airflow:root requirements.txt constraints.txt /opt/airflow/
RUN pip install --no-cache-dir \
        -r /opt/airflow/requirements.txt \
        -c /opt/airflow/constraints.txt

# Project code. docker-compose bind-mounts these too for local development.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root scripts/ /opt/airflow/scripts/
COPY --chown=airflow:root pyproject.toml /opt/airflow/

# Pre-create the data dir so the compose named volume inherits airflow
# ownership (group 0 writable, as for the image's other dirs).
RUN mkdir -p /opt/airflow/segmentation && chmod 775 /opt/airflow/segmentation

# The segmentation package lives in plugins/ and is imported from there
# (no editable install needed).
ENV PYTHONPATH=/opt/airflow/plugins \
    SEGMENTATION_SQL_DIR=/opt/airflow/include/sql \
    SEGMENTATION_HOME=/opt/airflow/segmentation
