"""A small FastAPI (ASGI) service for App Engine standard.

App Engine runs the `entrypoint` of app.yaml with $PORT set; uvicorn serves the ASGI app on it.
Nothing here is cloudlet-specific: the same files deploy to Google Cloud unchanged.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="asgi-fastapi", description="An ASGI example for App Engine standard.")

NOTES: dict[int, str] = {}  # in the instance's memory: a real app would use a database


class Note(BaseModel):
    text: str


@app.get("/")
async def welcome() -> dict[str, str]:
    return {
        "message": os.environ.get("GREETING", "Hello"),
        "service": os.environ.get("GAE_SERVICE", "local"),
        "version": os.environ.get("GAE_VERSION", "local"),
    }


@app.get("/time")
async def now() -> dict[str, str]:
    return {"time": datetime.now(UTC).isoformat(timespec="seconds")}


@app.get("/wait")
async def wait(seconds: float = 0.2) -> dict[str, float]:
    """An await that does not block the server: concurrent requests overlap."""
    await asyncio.sleep(min(seconds, 5.0))
    return {"waited": seconds}


@app.post("/notes", status_code=201)
async def add_note(note: Note) -> dict[str, object]:
    note_id = len(NOTES) + 1
    NOTES[note_id] = note.text
    return {"id": note_id, "text": note.text}


@app.get("/notes/{note_id}")
async def get_note(note_id: int) -> dict[str, object]:
    if note_id not in NOTES:
        raise HTTPException(status_code=404, detail=f"note {note_id} not found")
    return {"id": note_id, "text": NOTES[note_id]}
