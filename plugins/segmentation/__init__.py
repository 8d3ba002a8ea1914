"""Monthly customer segmentation: the library behind the Airflow DAGs.

Plain Python; importing it does not import Airflow, TensorFlow or Great Expectations.
Each pipeline stage lives in a module named after it: ingest, validate, features, train, score, publish.
"""

__version__ = "0.1.0"
