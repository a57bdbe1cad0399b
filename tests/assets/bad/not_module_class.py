from dataclasses import dataclass


@dataclass
class Config:
    depth: int = 18
