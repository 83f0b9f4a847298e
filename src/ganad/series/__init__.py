"""Series end to end: a wrapper over any detector (windows -> point scores -> events),
streaming scoring, series files and series metrics. See docs/series.md."""

from ganad.series.detector import SeriesDetector, SeriesScores, is_series_model, load_series
from ganad.series.stream import StreamScorer, StreamUpdate

__all__ = ["SeriesDetector", "SeriesScores", "StreamScorer", "StreamUpdate", "is_series_model", "load_series"]
