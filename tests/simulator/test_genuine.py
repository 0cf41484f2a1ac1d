"""Genuine traffic: daily, weekly and hourly seasonality."""

from __future__ import annotations

from fraud_detection import schema

NIGHT_END_HOUR = 6
DAY_TO_NIGHT_RATIO = 5


def test_hourly_and_weekly_seasonality_are_visible(small):
    genuine = small[small["fraud_scenario"] == "genuine"]
    hour = genuine[schema.TIMESTAMP].dt.hour
    day, night = hour.between(9, 20).sum(), (hour < NIGHT_END_HOUR).sum()
    assert day > DAY_TO_NIGHT_RATIO * night
    weekday = genuine[schema.TIMESTAMP].dt.day_of_week
    per_day = weekday.value_counts()
    assert per_day[5] > per_day[6]  # Saturday busier than Sunday
