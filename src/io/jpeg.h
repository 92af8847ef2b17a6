#pragma once
// JPEG through libjpeg-turbo, the library PIL decodes with, at PIL's settings: the same pixels
// as PIL, and a decoder that checks its input (stb_image 2.27, used before, did not).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image.h"

namespace vitqk::io {

// Whether the data starts with a JPEG start-of-image marker (FF D8), which libjpeg and PIL
// both require in the first two bytes.
bool is_jpeg(const uint8_t* data, size_t size);
// {width, height} from the headers. Throws "<name>: corrupt JPEG (<libjpeg's reason>)".
std::array<int, 2> jpeg_size(const uint8_t* data, size_t size, const std::string& name);
// The pixels: L for one-component files, RGB for the others (CMYK converted as PIL converts
// it). Throws on corrupt or truncated data, and on more than kMaxJpegScans scans.
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);

// A progressive file names its scans; each one rereads the whole image, so a small hostile
// file with thousands of them takes minutes. Real files have about ten (libjpeg-turbo's
// djpeg offers -maxscans for the same reason).
constexpr int kMaxJpegScans = 1000;

}  // namespace vitqk::io
