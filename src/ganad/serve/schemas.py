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
    instances: Optional[list[Row]] = Field(None, description="Samples, one per row, each of the model's sample shape "
                                                            "(or flat, with as many numbers as the shape holds).")
    views: Optional[dict[str, list[Row]]] = Field(None, description="Multi-view models only, instead of instances: "
                                                                      "each view's rows, the same samples in the same order.")
    components: bool = Field(False, description="Also return each score component.")
    map: bool = Field(False, description="Also return the anomaly map (|x - x̂| per feature / time step, scaled units).")


class ScoreResponse(BaseModel):
    model: str = Field(..., description="Name of the model that scored the request.")
    version: str = Field(..., description="Content hash of the model files that scored the request.")
    n: int = Field(..., description="Number of samples scored.")
    threshold: float = Field(..., description="The model's threshold_: label = score > threshold.")
    scores: list[float] = Field(..., description="Anomaly score per sample (higher = more anomalous).")
    labels: list[int] = Field(..., description="0 = normal, 1 = anomaly, per sample.")
    components: Optional[dict[str, list[float]]] = Field(None, description="Each score component per sample (on request); "
                                                                             "multi-view models: each view's term of the sum (view_NAME), its surprise among normal samples (a z-score for combine='zscore').")
    map: Optional[list] = Field(None, description="Anomaly map per sample, the sample's shape (on request).")
    recording: Optional[str] = Field(None, description="With ?recording= (ganad serve --warm-up N): the recording scored.")
    new_recording: Optional[bool] = Field(None, description="The recording had no state (first request, or evicted / reloaded since).")
    thresholds: Optional[list[float]] = Field(None, description="With a recording: the threshold in force per sample "
                                                                "(the model's during the recording's warm-up, its own after it); labels = score > it.")
    warm_up: Optional[list[int]] = Field(None, description="With a recording: 1 for the samples inside its warm-up.")
    recording_state: Optional[dict] = Field(None, description='With a recording: {"warm_up": k} (k of N samples seen) or '
                                                              '{"threshold": t} (its own).')


class SeriesInfo(BaseModel):
    window: int = Field(..., description="Points per window.")
    stride: int = Field(..., description="Step between window starts.")
    channels: list[str] = Field(..., description="Channel names, in the order the points must give them.")
    n_channels: int
    latency_points: int = Field(..., description="Most points a point's score waits for: window - 1 + stride - 1.")
    event_gap: int = Field(0, description="Runs of anomalous points with at most this many normal points between them are one event; "
                                          "an event closes event_gap + 1 points after its last anomalous point.")
    params: dict = Field(..., description="The series wrapper's parameters.")


class ModelInfo(BaseModel):
    name: str
    kind: str = Field("detector", description="'detector' (POST .../score), 'series' (POST .../series) or 'multiview' "
                                               "(POST .../score with {\"views\": {NAME: rows}}).")
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
    series: Optional[SeriesInfo] = Field(None, description="Series models: window layout and channels.")
    views: Optional[dict[str, list[int]]] = Field(None, description="Multi-view models: each view's sample shape.")
    description: Optional[dict] = Field(None, description="What `ganad info` reports (ganad.describe): the input, the training and "
                                                          "its held-out selection, what the default score reads, where the threshold "
                                                          "comes from, and notes.")


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


class SeriesRequest(BaseModel):
    """A JSON body of ``POST /v1/models/{name}/series``: the next points of one stream."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"stream_id": "sensor-7", "points": [[0.1, 0.2], [0.0, 0.3]]}, {"stream_id": "pump-1", "values": [0.5, 0.6, 0.4]}]})
    stream_id: Optional[str] = Field(None, description="The stream (1-200 of letters, digits, - _ . : @); or ?stream_id= or the "
                                                       "X-Stream-Id header. A new id starts a new stream.")
    points: Optional[list[list[float]]] = Field(None, description="The next points, oldest first, one row of every channel each.")
    values: Optional[list[float]] = Field(None, description="The next points of a one-channel model (instead of points).")
    components: bool = Field(False, description="Also return each point's per-channel contributions.")


class SeriesEvent(BaseModel):
    start: int = Field(..., description="Index of the event's first point in the stream (0 = the stream's first point).")
    end: Optional[int] = Field(None, description="Index of its last point (closed events).")
    length: Optional[int] = None
    peak: Optional[int] = Field(None, description="Index of its highest score.")
    peak_score: Optional[float] = None
    channels: Optional[str] = Field(None, description="Driving channels with their share of the residual, 'name=share;...'.")
    shares: Optional[dict[str, float]] = Field(None, description="Every channel's share of the residual.")


class SeriesResponse(BaseModel):
    model: str
    version: str = Field(..., description="Content hash of the model files that scored this chunk.")
    stream_id: str
    new_stream: bool = Field(..., description="True when this chunk started the stream (first chunk, or the stream had been "
                                              "dropped: idle, evicted or the model reloaded; its indices restart at 0).")
    received: int = Field(..., description="Points in this chunk.")
    n_seen: int = Field(..., description="Points received on this stream so far.")
    threshold: float
    latency_points: int = Field(..., description="Most points a point's score waits for.")
    index: list[int] = Field(..., description="Indices (in the stream) of the points whose score became final with this chunk.")
    scores: list[float] = Field(..., description="Their scores: equal to batch scoring of the whole series.")
    labels: list[int] = Field(..., description="score > threshold.")
    contributions: Optional[list[list[float]]] = Field(None, description="Per-channel contributions per point (on request).")
    opened: list[SeriesEvent] = Field(..., description="Events that opened with these points.")
    closed: list[SeriesEvent] = Field(..., description="Events that closed with these points.")
    ended: bool = Field(False, description="True in the answer to DELETE: the stream is finished and forgotten.")
