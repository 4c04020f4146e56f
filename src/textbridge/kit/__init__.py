"""Domain-free helpers: phone numbers, SMS encoding, ids, money, time. No feature imports."""
