"""The web pages: login, kiosk and console pages, the administrator's and review pages, statistics, exports."""
