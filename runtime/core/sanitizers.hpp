// BRIG_ASAN: 1 when built with AddressSanitizer (g++ says so with
// __SANITIZE_ADDRESS__, clang only through __has_feature).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define BRIG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BRIG_ASAN 1
#endif
#endif
#ifndef BRIG_ASAN
#define BRIG_ASAN 0
#endif
