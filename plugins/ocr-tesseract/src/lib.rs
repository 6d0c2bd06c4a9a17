//! # passerelle-ocr-tesseract (work in progress)
