"""Shared test set-up: offline, quick, and a private cache so tests never touch a user's."""
import os

import pytest


@pytest.fixture(autouse=True)
def _offline_private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COURSE_CACHE", os.environ.get("COURSE_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "course-cache"))
