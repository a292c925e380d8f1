"""The Plus One MLflow model, logged as code (MLflow "models from code").

MLflow stores this file with the model and runs it when the model is loaded; the fitted model
itself travels as plain files (the saved-model directory, artifact ``model_dir``), so no pickle
of our objects is ever written or read. Input: a DataFrame with ``member_id`` (and optionally
``k``, per row); output: the slates table ``member_id, rank, other_id, score`` (rank from 1),
the same columns as ``recsys rank --members ... --output``.

    >>> import mlflow                                             # doctest: +SKIP
    >>> model = mlflow.pyfunc.load_model("models:/plusone@champion")
    >>> model.predict(pd.DataFrame({"member_id": ["u0000042"], "k": [5]}))
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class PlusOneSlates(PythonModel):
    """Slates of introductions from a saved Plus One model directory."""

    def load_context(self, context) -> None:
        from recsys import load_model

        self._model = load_model(context.artifacts["model_dir"])  # checksums verified, no pickles

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from training.mlflow_model import predict_slates

        return predict_slates(self._model, model_input)


mlflow.models.set_model(PlusOneSlates())
