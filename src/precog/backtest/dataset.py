"""What a backtest replays: events over a date range plus the archive of known results (for training)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, tzinfo
from pathlib import Path
from typing import Protocol

from precog.backtest.errors import BacktestError
from precog.backtest.feed import ArchivedGame, Event, PlayByPlay


class Dataset(Protocol):
    kind: str  # nfl_history | recording
    source: str
    archive: list[ArchivedGame]
    tz: tzinfo  # whose calendar days --from/--to and the windows' dates are

    def date_range(self) -> tuple[date, date]: ...

    def events(self, start: date | None, end: date | None, tag: str) -> list[Event]: ...

    def has_in_game(self, start: date | None, end: date | None) -> bool: ...

    def has_pre_game(self, start: date | None, end: date | None) -> bool:
        """Whether any market is quoted before its game starts in the range."""
        ...

    def play_by_play(self) -> PlayByPlay | None:
        """Plays for model training (read lazily; only through the GuardedArchive)."""
        ...


@dataclass
class NflDataset:
    kind = "nfl_history"
    source: str
    history: object  # precog.backtest.history.NflHistory
    archive: list[ArchivedGame] = field(default_factory=list)
    tz: tzinfo = UTC  # the files' game dates (kickoff taken as 18:00 UTC)

    def date_range(self) -> tuple[date, date]:
        games = self.history.games  # type: ignore[attr-defined]
        if not games:
            raise BacktestError(f"{self.source}: no games with a market in the data")
        return games[0].day, games[-1].day

    def events(self, start: date | None, end: date | None, tag: str) -> list[Event]:
        from precog.backtest.history import game_events

        return list(game_events(self.history.between(start, end), tag))  # type: ignore[attr-defined]

    def has_in_game(self, start: date | None, end: date | None) -> bool:
        return any(g.plays for g in self.history.between(start, end))  # type: ignore[attr-defined]

    def has_pre_game(self, start: date | None, end: date | None) -> bool:
        # only games with a closing line are quoted before kickoff (spreadspoke covers 1966-2014)
        return any(g.pre_game_priced for g in self.history.between(start, end))  # type: ignore[attr-defined]

    def play_by_play(self) -> PlayByPlay | None:
        from precog.backtest.history import training_plays

        return training_plays(self.history.folder)  # type: ignore[attr-defined]


def open_dataset(path: Path, *, sigma: float, start: date | None, end: date | None, in_game: bool = True,
                 tz: tzinfo = UTC) -> Dataset:
    """A recording directory (gzip JSON lines from `precog ingest run --record`) or the NFL history folder;
    `in_game=False` (`--no-in-game`) leaves the NFL play-by-play out: pre-game markets only. A recording's days
    are calendar days in `tz`."""
    if not path.exists():
        raise BacktestError(f"--data {path}: no such file or directory")
    from precog.ingest.recorder import recording_files

    if path.is_dir() and any(path.glob("*.jsonl.gz")):
        from precog.backtest.recording import RecordingDataset

        return RecordingDataset.open(path, recording_files(path), tz=tz)
    from precog.backtest.history import load_nfl

    hist = load_nfl(path, sigma=sigma, start=None, end=end, in_game=in_game)
    return NflDataset(str(hist.folder), hist, hist.archive)
