"""Typed request and response bodies of the HTTP API (pydantic): the OpenAPI document is generated from them.

The score endpoint parses its body itself (JSON with orjson, CSV, Parquet, NPY) for speed and to
give the library's own error messages; these models describe that body and the answers.
"""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Row = Union[list[float], list[list[float]], list[list[list[float]]]]


class ScoreRequest(BaseModel):
    """A JSON body of ``POST /v1/models/{name}/score``: either this object or a bare list of rows."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"instances": [[0.1, 0.2, 0.3], [0.0, 0.4, 0.1]], "components": True}]})
    instances: list[Row] = Field(..., description="Samples, one per row, each of the model's sample shape "
                                                  "(or flat, with as many numbers as the shape holds).")
    components: bool = Field(False, description="Also return each score component.")
    map: bool = Field(False, description="Also return the anomaly map (|x - x̂| per feature / time step, scaled units).")


class ScoreResponse(BaseModel):
    model: str = Field(..., description="Name of the model that scored the request.")
    version: str = Field(..., description="Content hash of the model files that scored the request.")
    n: int = Field(..., description="Number of samples scored.")
    threshold: float = Field(..., description="The model's threshold_: label = score > threshold.")
    scores: list[float] = Field(..., description="Anomaly score per sample (higher = more anomalous).")
    labels: list[int] = Field(..., description="0 = normal, 1 = anomaly, per sample.")
    components: Optional[dict[str, list[float]]] = Field(None, description="Each score component per sample (on request).")
    map: Optional[list] = Field(None, description="Anomaly map per sample, the sample's shape (on request).")


class ModelInfo(BaseModel):
    name: str
    method: str = Field(..., description="Detector class, e.g. FAnoGAN.")
    version: str = Field(..., description="Content hash of config.json and model.safetensors (changes on reload of new files).")
    ganad_version: str = Field(..., description="ganad version that wrote the model.")
    path: str = Field(..., description="Model directory on the server.")
    input_shape: list[int] = Field(..., description="Shape of one sample.")
    n_features_in: int = Field(..., description="Numbers per sample (a flat row must hold this many).")
    threshold: float
    components: Optional[list[str]] = Field(None, description="Components the score is composed of.")
    params: dict = Field(..., description="The detector's constructor parameters.")
    loaded_at: float = Field(..., description="Unix time the model was (re)loaded.")


class ModelList(BaseModel):
    models: list[ModelInfo]


class ReloadResult(BaseModel):
    reloaded: list[ModelInfo]


class Health(BaseModel):
    status: str
    models: Optional[list[str]] = None
    detail: Optional[str] = None


class ErrorBody(BaseModel):
    status: int
    type: str = Field(..., description="Error class, e.g. InputError, BodyTooLarge, UnknownModel.")
    message: str = Field(..., description="What is wrong with which input, and the fix.")


class ErrorResponse(BaseModel):
    error: ErrorBody
