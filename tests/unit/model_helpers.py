"""A model that records how it is driven: when each batch is started and collected."""

from workers.inference.model import SentimentModel


class RecordingModel(SentimentModel):
    """The untrained model, recording when each batch is started and collected; `overlap` stands in for a GPU,
    where `queue` returns before the batch is computed."""

    def __init__(self, overlap: bool) -> None:
        base = SentimentModel.load("untrained", "cpu")
        super().__init__(base.model, base.device, base.version)
        self.overlap, self.events = overlap, []

    @property
    def asynchronous(self) -> bool:
        return self.overlap

    def start(self, decoded):
        self.events.append(f"start {decoded[0][0]}")
        return super().start(decoded)

    def collect(self, queued):
        self.events.append("collect")
        return super().collect(queued)
