"""The medical-cnn feature extractor: a compact CNN trained here on the shared medical data sets."""
