"""vidistill: image VLM -> video VLM -> millions of video captions -> video-text dual encoder."""

__version__ = "0.1.0"
