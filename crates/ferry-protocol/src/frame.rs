//! Size-prefixed frame codec with a maximum frame size; request and response headers.
