"""fraud-detection: payment-fraud models trained, tracked, promoted and served."""

__version__ = "0.1.0"
