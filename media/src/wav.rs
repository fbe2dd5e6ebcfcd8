//! WAV files in and out: audio as edgepbx stores and plays it (16-bit
//! linear PCM, mono, 8 kHz) and the many kinds of WAV people upload as
//! prompts, greetings and music on hold.
//!
//! [`read_wav`] takes the bytes of a WAV file and gives [`Pcm`]: it walks
//! the RIFF chunks (skipping the ones it does not know), decodes the
//! samples of any common encoding, mixes the channels down to mono and
//! resamples to [`RATE`]. [`Pcm::to_wav`] writes the canonical file with a
//! 44-byte header back. Nothing here reads a file: bytes in, samples out.
//!
//! Resampling down goes through a windowed-sinc low-pass (Kaiser window,
//! β = 8, 32 zero crossings each side, cut-off 3.7 kHz: flat to 3.4 kHz,
//! 6 dB down at 3.7 kHz, more than 80 dB down from 4.1 kHz), evaluated at
//! every output instant so that any rate works, not only multiples of
//! 8 kHz. Whatever a 44.1 kHz recording holds above the telephone band is
//! removed rather than folded back into it as aliasing. Resampling up
//! interpolates linearly: the input has nothing above its own Nyquist
//! frequency to remove.
//!
//! The reader is tolerant where writers are known to be sloppy: the RIFF
//! size is ignored, a data chunk that claims more than the file holds (or
//! 0 bytes with audio after it, as some streaming writers leave it) runs
//! to the end of the file, a block alignment that disagrees with channels
//! × sample size is ignored; RF64 and BW64 (their 0xFFFFFFFF sizes) read
//! like RIFF. It is strict where a mistake would be heard: an encoding it
//! cannot decode is an error, never noise.

use std::f64::consts::PI;

use crate::g711;

/// The telephone rate every stored prompt, greeting and message has.
pub const RATE: u32 = 8_000;

/// Lowest sample rate [`read_wav`] accepts, in hertz.
const MIN_RATE: u32 = 4_000;
/// Highest sample rate [`read_wav`] accepts, in hertz.
const MAX_RATE: u32 = 192_000;

/// Samples in one 20 ms frame at [`RATE`] (what [`Pcm::has_sound`] measures).
const FRAME: usize = 160;

/// `wFormatTag` of integer PCM.
const FORMAT_PCM: u16 = 0x0001;
/// `wFormatTag` of IEEE floating point.
const FORMAT_FLOAT: u16 = 0x0003;
/// `wFormatTag` of G.711 A-law.
const FORMAT_ALAW: u16 = 0x0006;
/// `wFormatTag` of G.711 μ-law.
const FORMAT_ULAW: u16 = 0x0007;
/// `wFormatTag` of `WAVE_FORMAT_EXTENSIBLE`: the real format is a GUID.
const FORMAT_EXTENSIBLE: u16 = 0xfffe;

/// The last 12 bytes of every `KSDATAFORMAT_SUBTYPE_*` GUID that wraps a
/// `wFormatTag` (`xxxxxxxx-0000-0010-8000-00aa00389b71`, the tag in the
/// first four bytes).
const SUBTYPE_SUFFIX: [u8; 12] = [
    0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/// Audio as edgepbx stores and plays it: 16-bit linear PCM, mono, 8 kHz.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pcm(pub Vec<i16>);

impl Pcm {
    /// Its length in milliseconds.
    pub fn millis(&self) -> u64 {
        (self.0.len() as u64).saturating_mul(1_000) / u64::from(RATE)
    }

    /// Serialises it as a WAV file (RIFF, PCM format 1, 16-bit, mono, 8 kHz).
    ///
    /// A RIFF size has 32 bits: audio beyond what it can describe (about 74
    /// hours) is left out.
    pub fn to_wav(&self) -> Vec<u8> {
        const HEADER: u32 = 36;
        let max_samples = ((u32::MAX - HEADER) / 2) as usize;
        let samples = self.0.get(..max_samples).unwrap_or(&self.0);
        // At most u32::MAX - 36 by the line above.
        let data_len = (samples.len() * 2) as u32;
        let mut out = Vec::with_capacity(HEADER as usize + 8 + samples.len() * 2);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(HEADER + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVE");
        out.extend_from_slice(b"fmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&FORMAT_PCM.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // channels
        out.extend_from_slice(&RATE.to_le_bytes());
        out.extend_from_slice(&(RATE * 2).to_le_bytes()); // bytes per second
        out.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
        out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for sample in samples {
            out.extend_from_slice(&sample.to_le_bytes());
        }
        out
    }

    /// Whether it holds more than silence: true when at least `min_millis`
    /// worth of 20 ms frames have an RMS level above `threshold` (linear,
    /// e.g. 300 of 32767).
    ///
    /// A last, shorter frame counts for its own length. Silence is never
    /// sound: with `min_millis` 0, one loud frame is still needed.
    pub fn has_sound(&self, threshold: u16, min_millis: u64) -> bool {
        let limit = u64::from(threshold).pow(2);
        let mut loud_samples: u64 = 0;
        for frame in self.0.chunks(FRAME) {
            // At most 160 × 2^30: no overflow.
            let energy: u64 = frame
                .iter()
                .map(|sample| u64::from(sample.unsigned_abs()).pow(2))
                .sum();
            // RMS > threshold, without a square root or a division.
            if energy > limit * frame.len() as u64 {
                loud_samples += frame.len() as u64;
            }
        }
        loud_samples > 0
            && loud_samples.saturating_mul(1_000) >= min_millis.saturating_mul(u64::from(RATE))
    }
}

/// Why a WAV file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// The bytes do not start with a RIFF header.
    #[error("not a WAV file: no RIFF header")]
    NotRiff,
    /// A RIFF file, but of another kind (AVI, WebP…).
    #[error("not a WAV file: the RIFF file does not hold WAVE audio")]
    NotWave,
    /// The big-endian variant of WAV.
    #[error("big-endian WAV (RIFX) is not supported: save it as an ordinary WAV")]
    BigEndian,
    /// The file ends inside its headers, before the audio.
    #[error("the WAV file is truncated: it ends before its audio")]
    Truncated,
    /// No `fmt ` chunk says how the audio is encoded.
    #[error("the WAV file has no fmt chunk describing its audio")]
    NoFormat,
    /// No `data` chunk: there is no audio.
    #[error("the WAV file has no data chunk: it holds no audio")]
    NoData,
    /// The `fmt ` chunk is there but cannot be read.
    #[error("the WAV file's fmt chunk is malformed: {reason}")]
    MalformedFormat {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An encoding other than PCM, float, μ-law and A-law (MP3, ADPCM…).
    #[error(
        "WAV format {format}{} is not supported: use PCM, μ-law or A-law",
        format_label(.format)
    )]
    UnsupportedFormat {
        /// The `wFormatTag` (for `WAVE_FORMAT_EXTENSIBLE`, the one its
        /// subformat GUID wraps).
        format: u16,
    },
    /// `WAVE_FORMAT_EXTENSIBLE` with a subformat GUID that wraps no
    /// format tag.
    #[error("WAV subformat {guid} is not supported: use PCM, μ-law or A-law")]
    UnsupportedSubformat {
        /// The GUID, in its usual written form.
        guid: String,
    },
    /// A supported encoding with a sample size it does not come in.
    #[error(
        "{bits}-bit {} WAV is not supported: use 8-, 16-, 24- or 32-bit PCM, \
         32- or 64-bit float, or 8-bit μ-law or A-law",
        encoding_name(.format)
    )]
    UnsupportedSampleSize {
        /// The `wFormatTag`.
        format: u16,
        /// Bits per sample, as the header gives them.
        bits: u16,
    },
    /// The header declares no channel.
    #[error("the WAV file declares 0 audio channels")]
    NoChannels,
    /// A sample rate outside 4,000–192,000 Hz.
    #[error("a WAV sample rate of {rate} Hz is not supported: use 4000 to 192000 Hz")]
    UnsupportedRate {
        /// The rate the header gives, in hertz.
        rate: u32,
    },
    /// The audio lasts longer than allowed.
    #[error("the audio is longer than the {max_secs} seconds allowed")]
    TooLong {
        /// The limit [`read_wav`] was given.
        max_secs: u32,
    },
}

/// The name of a `wFormatTag` in parentheses, for messages, or nothing.
fn format_label(format: &u16) -> String {
    let name = match *format {
        0x0000 => "unknown",
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x0064 => "G.726 ADPCM",
        0x0065 => "G.722 ADPCM",
        0x00ff | 0x1610 => "AAC",
        0x0160..=0x0163 => "Windows Media Audio",
        0x2000 => "AC-3",
        _ => return String::new(),
    };
    format!(" ({name})")
}

/// The name of a supported `wFormatTag`, for messages.
fn encoding_name(format: &u16) -> &'static str {
    match *format {
        FORMAT_FLOAT => "float",
        FORMAT_ULAW => "μ-law",
        FORMAT_ALAW => "A-law",
        _ => "PCM",
    }
}

/// Reads a WAV file of any common kind and converts it to what edgepbx
/// plays.
///
/// Accepted: PCM 8-bit unsigned, 16-bit, 24-bit, 32-bit integer (and
/// sizes in between, in the next whole byte), 32- and 64-bit float (format
/// 3), μ-law (format 7), A-law (format 6), and `WAVE_FORMAT_EXTENSIBLE`
/// (0xFFFE) whose subformat GUID is one of those; any number of channels,
/// mixed down to mono by averaging; any sample rate from 4,000 to
/// 192,000 Hz, resampled to 8 kHz (low-pass filtered first when going
/// down, see the module documentation).
///
/// Chunks it does not know (LIST, fact, cue, bext, JUNK…) are skipped,
/// odd-sized chunks are padded as RIFF says. A data chunk that claims more
/// bytes than the file holds is read up to the end of the file (some
/// writers stream with a 0 or 0xFFFFFFFF size); a last incomplete frame is
/// dropped.
///
/// Audio longer than `max_secs` is [`WavError::TooLong`]; the length is
/// checked on what the file really holds, before anything is decoded, so
/// memory is bounded by the input whatever its header claims.
pub fn read_wav(bytes: &[u8], max_secs: u32) -> Result<Pcm, WavError> {
    let (fmt, data) = find_chunks(bytes)?;
    let format = parse_format(fmt)?;
    let width = format.width;
    let frame_size = width * usize::from(format.channels);
    let frames = data.len() / frame_size;
    if frames as u64 > u64::from(max_secs) * u64::from(format.rate) {
        return Err(WavError::TooLong { max_secs });
    }
    let channels = f32::from(format.channels);
    let mono: Vec<f32> = data
        .chunks_exact(frame_size)
        .map(|frame| {
            let sum: f32 = frame
                .chunks_exact(width)
                .map(|sample| decode(format.encoding, sample))
                .sum();
            sum / channels
        })
        .collect();
    let resampled = resample(mono, format.rate);
    Ok(Pcm(resampled.into_iter().map(to_i16).collect()))
}

/// Finds the `fmt ` and `data` chunks' bodies.
fn find_chunks(bytes: &[u8]) -> Result<(&[u8], &[u8]), WavError> {
    match bytes.get(..4) {
        Some(b"RIFF" | b"RF64" | b"BW64") => {}
        Some(b"RIFX") => return Err(WavError::BigEndian),
        Some(_) => return Err(WavError::NotRiff),
        None if !bytes.is_empty() && b"RIFF".starts_with(bytes) => {
            return Err(WavError::Truncated);
        }
        None => return Err(WavError::NotRiff),
    }
    match bytes.get(8..12) {
        Some(b"WAVE") => {}
        Some(_) => return Err(WavError::NotWave),
        None => return Err(WavError::Truncated),
    }
    // The RIFF size (bytes 4..8) is ignored: streaming writers leave 0 or
    // 0xFFFFFFFF there, and the chunks say all there is to know.
    let mut fmt = None;
    let mut data = None;
    let mut truncated = false;
    let mut pos: usize = 12;
    while fmt.is_none() || data.is_none() {
        let Some(&[i0, i1, i2, i3, s0, s1, s2, s3]) = bytes.get(pos..pos.saturating_add(8)) else {
            // Part of a chunk header is a cut file; none is its end.
            truncated = pos < bytes.len();
            break;
        };
        let id = [i0, i1, i2, i3];
        let size = u32::from_le_bytes([s0, s1, s2, s3]) as usize;
        let body_start = pos + 8;
        let rest = bytes.get(body_start..).unwrap_or_default();
        let body = rest.get(..size);
        match (&id, body) {
            (b"fmt ", Some(body)) => fmt = fmt.or(Some(body)),
            (b"fmt ", None) => return Err(WavError::Truncated),
            (b"data", Some(body)) if size > 0 || rest.is_empty() || looks_like_chunk(rest) => {
                data = data.or(Some(body));
            }
            (b"data", _) => {
                // More than the file holds, or a streaming writer's 0:
                // the audio runs to the end of the file.
                data = data.or(Some(rest));
                break;
            }
            (_, None) => {
                truncated = true;
                break;
            }
            (_, Some(_)) => {}
        }
        pos = body_start.saturating_add(size).saturating_add(size & 1);
    }
    match (fmt, data) {
        (Some(fmt), Some(data)) => Ok((fmt, data)),
        _ if truncated => Err(WavError::Truncated),
        (None, _) => Err(WavError::NoFormat),
        (Some(_), None) => Err(WavError::NoData),
    }
}

/// Whether `bytes` start with a plausible chunk header: a printable ASCII
/// identifier and a size that fits in what follows.
fn looks_like_chunk(bytes: &[u8]) -> bool {
    let Some(&[i0, i1, i2, i3, s0, s1, s2, s3]) = bytes.get(..8) else {
        return false;
    };
    let size = u32::from_le_bytes([s0, s1, s2, s3]) as usize;
    [i0, i1, i2, i3].iter().all(|b| (0x20..=0x7e).contains(b)) && size <= bytes.len() - 8
}

/// How the samples of a data chunk are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Integer PCM of 8 bits: unsigned, 128 is silence.
    Unsigned,
    /// Integer PCM of 2 to 4 bytes: signed, little-endian, left-justified.
    Signed,
    /// IEEE float of 4 or 8 bytes, ±1.0 full scale.
    Float,
    /// G.711 μ-law, one byte.
    Ulaw,
    /// G.711 A-law, one byte.
    Alaw,
}

/// What the `fmt ` chunk says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    encoding: Encoding,
    /// Bytes per sample of one channel.
    width: usize,
    /// At least 1.
    channels: u16,
    /// Within [`MIN_RATE`]..=[`MAX_RATE`].
    rate: u32,
}

/// Reads a `fmt ` chunk's body.
fn parse_format(body: &[u8]) -> Result<Format, WavError> {
    let (Some(tag), Some(channels), Some(rate), Some(bits)) = (
        le_u16(body, 0),
        le_u16(body, 2),
        le_u32(body, 4),
        le_u16(body, 14),
    ) else {
        return Err(WavError::MalformedFormat {
            reason: "it is shorter than 16 bytes",
        });
    };
    let tag = if tag == FORMAT_EXTENSIBLE {
        let guid = body.get(24..40).ok_or(WavError::MalformedFormat {
            reason: "WAVE_FORMAT_EXTENSIBLE without its subformat",
        })?;
        subformat(guid)?
    } else {
        tag
    };
    let width = usize::from(bits.div_ceil(8));
    let encoding = match (tag, width) {
        (FORMAT_PCM, 1) => Encoding::Unsigned,
        (FORMAT_PCM, 2..=4) => Encoding::Signed,
        (FORMAT_FLOAT, _) if bits == 32 || bits == 64 => Encoding::Float,
        (FORMAT_ULAW, _) if bits == 8 => Encoding::Ulaw,
        (FORMAT_ALAW, _) if bits == 8 => Encoding::Alaw,
        (FORMAT_PCM | FORMAT_FLOAT | FORMAT_ULAW | FORMAT_ALAW, _) => {
            return Err(WavError::UnsupportedSampleSize { format: tag, bits });
        }
        _ => return Err(WavError::UnsupportedFormat { format: tag }),
    };
    if channels == 0 {
        return Err(WavError::NoChannels);
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(WavError::UnsupportedRate { rate });
    }
    Ok(Format {
        encoding,
        width,
        channels,
        rate,
    })
}

/// The format tag a `WAVE_FORMAT_EXTENSIBLE` subformat GUID wraps.
fn subformat(guid: &[u8]) -> Result<u16, WavError> {
    let data1 = le_u32(guid, 0).unwrap_or_default();
    match (guid.get(4..16), u16::try_from(data1)) {
        (Some(suffix), Ok(tag)) if suffix == SUBTYPE_SUFFIX && tag != FORMAT_EXTENSIBLE => Ok(tag),
        _ => {
            let data2 = le_u16(guid, 4).unwrap_or_default();
            let data3 = le_u16(guid, 6).unwrap_or_default();
            let data4: String = guid
                .iter()
                .skip(8)
                .enumerate()
                .map(|(i, b)| {
                    if i == 2 {
                        format!("-{b:02x}")
                    } else {
                        format!("{b:02x}")
                    }
                })
                .collect();
            Err(WavError::UnsupportedSubformat {
                guid: format!("{data1:08x}-{data2:04x}-{data3:04x}-{data4}"),
            })
        }
    }
}

/// A little-endian `u16` at `at`, if the bytes are there.
fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    match bytes.get(at..at.checked_add(2)?)? {
        &[a, b] => Some(u16::from_le_bytes([a, b])),
        _ => None,
    }
}

/// A little-endian `u32` at `at`, if the bytes are there.
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    match bytes.get(at..at.checked_add(4)?)? {
        &[a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d])),
        _ => None,
    }
}

/// One sample of one channel, full scale ±1.0.
fn decode(encoding: Encoding, sample: &[u8]) -> f32 {
    match (encoding, sample) {
        (Encoding::Unsigned, &[a]) => (f32::from(a) - 128.0) / 128.0,
        (Encoding::Signed, &[a, b]) => f32::from(i16::from_le_bytes([a, b])) / 32_768.0,
        // Sign-extended by the arithmetic shift; 24 bits fit an f32 exactly.
        (Encoding::Signed, &[a, b, c]) => {
            (i32::from_le_bytes([0, a, b, c]) >> 8) as f32 / 8_388_608.0
        }
        (Encoding::Signed, &[a, b, c, d]) => {
            i32::from_le_bytes([a, b, c, d]) as f32 / 2_147_483_648.0
        }
        (Encoding::Float, &[a, b, c, d]) => finite(f32::from_le_bytes([a, b, c, d])),
        (Encoding::Float, &[a, b, c, d, e, f, g, h]) => {
            finite(f64::from_le_bytes([a, b, c, d, e, f, g, h]) as f32)
        }
        (Encoding::Ulaw, &[a]) => f32::from(g711::ulaw_decode(a)) / 32_768.0,
        (Encoding::Alaw, &[a]) => f32::from(g711::alaw_decode(a)) / 32_768.0,
        // parse_format only pairs encodings with their widths.
        _ => 0.0,
    }
}

/// A float sample within full scale; NaN and infinities are silence.
fn finite(sample: f32) -> f32 {
    if sample.is_finite() {
        sample.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// A full-scale ±1.0 sample as 16-bit PCM, rounded and clipped.
fn to_i16(sample: f32) -> i16 {
    // `as` saturates, and turns NaN into 0.
    (sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

/// Mono samples at `rate` to mono samples at [`RATE`].
fn resample(input: Vec<f32>, rate: u32) -> Vec<f32> {
    if rate == RATE || input.is_empty() {
        return input;
    }
    // Rounded to the nearest whole sample.
    let out_len = (input.len() as u64 * u64::from(RATE) + u64::from(rate / 2)) / u64::from(rate);
    let out_len = usize::try_from(out_len).unwrap_or(usize::MAX);
    if rate < RATE {
        interpolate(&input, rate, out_len)
    } else {
        decimate(&input, rate, out_len)
    }
}

/// Upsampling by linear interpolation.
fn interpolate(input: &[f32], rate: u32, out_len: usize) -> Vec<f32> {
    let step = f64::from(rate) / f64::from(RATE);
    (0..out_len)
        .map(|n| {
            let t = n as f64 * step;
            let i = t as usize;
            let frac = (t - i as f64) as f32;
            let a = input.get(i).copied().unwrap_or(0.0);
            let b = input.get(i + 1).copied().unwrap_or(a);
            a + (b - a) * frac
        })
        .collect()
}

/// Zero crossings of the low-pass kernel on each side of its centre.
const ZEROS: usize = 32;
/// Kernel table entries per zero crossing (linear interpolation between).
const STEPS: usize = 128;
/// Kaiser window shape: about 80 dB of stop-band attenuation.
const BETA: f64 = 8.0;
/// Low-pass cut-off before downsampling, in hertz: the transition band
/// (about 0.6 kHz wide with 32 zero crossings) ends near 4 kHz.
const CUTOFF: f64 = 3_700.0;

/// Most weights a precomputed polyphase bank may hold (4 MiB of `f32`).
const MAX_BANK: usize = 1 << 20;

/// Downsampling: each output sample is the input low-passed at
/// [`CUTOFF`] and evaluated at the output instant.
///
/// Output sample `n` sits at input instant `n × rate / 8000`: its integer
/// part `base` and a fraction that repeats every `den` outputs, `den`
/// being `8000 / gcd(rate, 8000)` (1 for 16, 48 or 96 kHz, 80 for
/// 44.1 kHz). The weights of each of these phases are computed once (a
/// polyphase bank); for odd rates with thousands of phases they are
/// computed per output sample instead.
fn decimate(input: &[f32], rate: u32, out_len: usize) -> Vec<f32> {
    let table = kernel_table();
    let divisor = gcd(rate, RATE);
    let num = (rate / divisor) as usize;
    let den = (RATE / divisor) as usize;
    // Kernel zero crossings per input sample.
    let scale = 2.0 * CUTOFF / f64::from(rate);
    // Taps from `base + 1 - reach` to `base + reach`: the whole kernel,
    // whose half-width is ZEROS / scale input samples.
    let reach = (ZEROS as f64 / scale).ceil() as usize + 1;
    let taps = 2 * reach;
    let offset = |phase: usize| ((phase * num) % den) as f64 / den as f64;
    let bank: Option<Vec<f32>> = (den * taps <= MAX_BANK).then(|| {
        let mut bank = vec![0.0; den * taps];
        for (phase, weights) in bank.chunks_exact_mut(taps).enumerate() {
            fill_weights(&table, offset(phase), scale, reach, weights);
        }
        bank
    });
    let mut scratch = vec![0.0; taps];
    (0..out_len)
        .map(|n| {
            let phase = n % den;
            let base = (n / den) * num + (phase * num) / den;
            let weights = match &bank {
                Some(bank) => bank
                    .get(phase * taps..(phase + 1) * taps)
                    .unwrap_or_default(),
                None => {
                    fill_weights(&table, offset(phase), scale, reach, &mut scratch);
                    &scratch
                }
            };
            let start = (base + 1).checked_sub(reach);
            match start.and_then(|start| input.get(start..start + taps)) {
                Some(window) => dot(weights, window),
                None => edge(input, weights, base as isize + 1 - reach as isize),
            }
        })
        .collect()
}

/// The weights of the taps `1 - reach ..= reach` around an output instant
/// `offset` (0 ≤ offset < 1) past an input sample, normalised to a gain
/// of 1.
fn fill_weights(table: &[f32], offset: f64, scale: f64, reach: usize, weights: &mut [f32]) {
    let table_step = scale * STEPS as f64;
    // Distance, in table entries, from the first tap to the instant.
    let mut position = (offset + reach as f64 - 1.0) * table_step;
    for weight in weights.iter_mut() {
        let u = position.abs();
        let i = u as usize;
        let frac = (u - i as f64) as f32;
        let w0 = table.get(i).copied().unwrap_or(0.0);
        let w1 = table.get(i + 1).copied().unwrap_or(0.0);
        *weight = w0 + (w1 - w0) * frac;
        position -= table_step;
    }
    let sum: f32 = weights.iter().sum();
    if sum > 1e-3 {
        weights.iter_mut().for_each(|weight| *weight /= sum);
    }
}

/// Σ weights × samples, in eight lanes the compiler can vectorise.
fn dot(weights: &[f32], samples: &[f32]) -> f32 {
    let (weight_lanes, weight_rest) = weights.as_chunks::<8>();
    let (sample_lanes, sample_rest) = samples.as_chunks::<8>();
    let mut lanes = [0.0f32; 8];
    for (w, x) in weight_lanes.iter().zip(sample_lanes) {
        for ((lane, w), x) in lanes.iter_mut().zip(w).zip(x) {
            *lane += w * x;
        }
    }
    let rest: f32 = weight_rest
        .iter()
        .zip(sample_rest)
        .map(|(w, x)| w * x)
        .sum();
    lanes.iter().sum::<f32>() + rest
}

/// An output instant near either end, where part of the kernel (whose
/// first tap is at input index `start`) falls outside the input: the taps
/// inside are renormalised, so that the gain stays 1.
fn edge(input: &[f32], weights: &[f32], start: isize) -> f32 {
    let mut acc = 0.0f32;
    let mut used = 0.0f32;
    for (index, weight) in (start..).zip(weights) {
        let sample = usize::try_from(index).ok().and_then(|i| input.get(i));
        if let Some(sample) = sample {
            acc += sample * weight;
            used += weight;
        }
    }
    if used > 1e-3 { acc / used } else { 0.0 }
}

/// Greatest common divisor.
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One side of the Kaiser-windowed sinc, [`STEPS`] entries per zero
/// crossing, from the centre to past the last one.
fn kernel_table() -> Vec<f32> {
    let norm = bessel_i0(BETA);
    (0..=ZEROS * STEPS + 1)
        .map(|i| {
            let u = i as f64 / STEPS as f64;
            let r = u / ZEROS as f64;
            if r >= 1.0 {
                return 0.0;
            }
            let sinc = if i == 0 {
                1.0
            } else {
                (PI * u).sin() / (PI * u)
            };
            let window = bessel_i0(BETA * (1.0 - r * r).sqrt()) / norm;
            (sinc * window) as f32
        })
        .collect()
}

/// The modified Bessel function of the first kind, order 0, by its power
/// series (converges quickly for the arguments a Kaiser window uses).
fn bessel_i0(x: f64) -> f64 {
    let quarter_square = x * x / 4.0;
    let mut sum = 1.0;
    let mut term = 1.0;
    for k in 1..64u32 {
        term *= quarter_square / f64::from(k * k);
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk with its header and pad byte.
    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    /// A 16-byte `fmt ` body.
    fn fmt_body(format: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let block = channels.wrapping_mul(bits.div_ceil(8));
        let mut body = Vec::new();
        body.extend_from_slice(&format.to_le_bytes());
        body.extend_from_slice(&channels.to_le_bytes());
        body.extend_from_slice(&rate.to_le_bytes());
        body.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
        body.extend_from_slice(&block.to_le_bytes());
        body.extend_from_slice(&bits.to_le_bytes());
        body
    }

    fn fmt(format: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        chunk(b"fmt ", &fmt_body(format, channels, rate, bits))
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        out.extend_from_slice(b"WAVE");
        out.extend_from_slice(&body);
        out
    }

    fn wav(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        riff(&[fmt(format, channels, rate, bits), chunk(b"data", data)])
    }

    fn le16(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    fn sine(freq: f64, rate: u32, samples: usize, amplitude: f64) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                let t = n as f64 / f64::from(rate);
                (amplitude * (2.0 * PI * freq * t).sin()).round() as i16
            })
            .collect()
    }

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / samples.len().max(1) as f64).sqrt()
    }

    fn zero_crossings(samples: &[i16]) -> usize {
        samples
            .windows(2)
            .filter(|pair| matches!(pair, [a, b] if (*a < 0) != (*b < 0)))
            .count()
    }

    /// A deterministic pseudo-random sequence (xorshift).
    fn noise(samples: usize, amplitude: i16) -> Vec<i16> {
        let mut state: u32 = 0x1234_5678;
        (0..samples)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let span = 2 * i32::from(amplitude) + 1;
                ((state % span as u32) as i32 - i32::from(amplitude)) as i16
            })
            .collect()
    }

    fn read(bytes: &[u8]) -> Pcm {
        read_wav(bytes, 3_600).expect("a readable WAV file")
    }

    #[test]
    fn round_trip() {
        let mut samples = sine(440.0, RATE, 1_000, 20_000.0);
        samples.extend([i16::MIN, i16::MAX, 0, -1, 1]);
        let pcm = Pcm(samples);
        let bytes = pcm.to_wav();
        assert_eq!(bytes.len(), 44 + 2 * pcm.0.len());
        assert_eq!(bytes.get(..4), Some(&b"RIFF"[..]));
        assert_eq!(read(&bytes), pcm);
        assert_eq!(read(&Pcm::default().to_wav()), Pcm::default());
    }

    #[test]
    fn millis() {
        assert_eq!(Pcm(vec![0; 8_000]).millis(), 1_000);
        assert_eq!(Pcm(vec![0; 160]).millis(), 20);
        assert_eq!(Pcm::default().millis(), 0);
    }

    #[test]
    fn stereo_16k_becomes_mono_8k_of_half_the_length() {
        let left = sine(500.0, 16_000, 1_600, 10_000.0);
        let right: Vec<i16> = left.iter().map(|s| s / 2).collect();
        let interleaved: Vec<i16> = left
            .iter()
            .zip(&right)
            .flat_map(|(l, r)| [*l, *r])
            .collect();
        let pcm = read(&wav(FORMAT_PCM, 2, 16_000, 16, &le16(&interleaved)));
        assert!(pcm.0.len().abs_diff(800) <= 1, "{} samples", pcm.0.len());
        // The average of full and half amplitude: three quarters.
        let expected = rms(&left) * 0.75;
        let inner = pcm.0.get(100..700).expect("long enough");
        assert!(
            (rms(inner) - expected).abs() < expected * 0.02,
            "{}",
            rms(inner)
        );
    }

    #[test]
    fn channels_are_averaged() {
        let frames: Vec<i16> = [1_000, 3_000, -2_000]
            .iter()
            .cycle()
            .take(30)
            .copied()
            .collect();
        let pcm = read(&wav(FORMAT_PCM, 3, RATE, 16, &le16(&frames)));
        assert_eq!(pcm.0, vec![667; 10]);
    }

    #[test]
    fn a_1khz_sine_at_44k1_keeps_its_frequency() {
        let input = sine(1_000.0, 44_100, 44_100, 16_000.0);
        let pcm = read(&wav(FORMAT_PCM, 1, 44_100, 16, &le16(&input)));
        assert!(pcm.0.len().abs_diff(8_000) <= 1);
        // One second of 1 kHz crosses zero 2000 times.
        let crossings = zero_crossings(&pcm.0);
        assert!(crossings.abs_diff(2_000) <= 2, "{crossings} crossings");
        // And keeps its level (the passband is flat).
        let level = rms(pcm.0.get(200..7_800).expect("long enough"));
        assert!((level - rms(&input)).abs() < rms(&input) * 0.01, "{level}");
    }

    #[test]
    fn a_6khz_sine_at_44k1_is_filtered_out_not_aliased() {
        // 44101 Hz: the weights are computed per sample, not in a bank.
        for rate in [44_100, 44_101] {
            let input = sine(6_000.0, rate, rate as usize, 16_000.0);
            let pcm = read(&wav(FORMAT_PCM, 1, rate, 16, &le16(&input)));
            // Without the low-pass it would come out as a 2 kHz tone of
            // the same level; with it, at least 60 dB down away from the
            // edges.
            let level = rms(pcm.0.get(200..7_800).expect("long enough"));
            assert!(level < rms(&input) / 1_000.0, "{level} of {}", rms(&input));
        }
    }

    #[test]
    fn other_rates_come_out_at_8k() {
        for rate in [
            4_000, 6_000, 11_025, 22_050, 32_000, 48_000, 96_000, 192_000,
        ] {
            let input = sine(400.0, rate, rate as usize / 4, 8_000.0);
            let pcm = read(&wav(FORMAT_PCM, 1, rate, 16, &le16(&input)));
            assert!(pcm.0.len().abs_diff(2_000) <= 1, "{rate}: {}", pcm.0.len());
            let crossings = zero_crossings(&pcm.0);
            assert!(
                crossings.abs_diff(200) <= 2,
                "{rate}: {crossings} crossings"
            );
        }
    }

    #[test]
    fn upsampling_interpolates() {
        let pcm = read(&wav(FORMAT_PCM, 1, 4_000, 16, &le16(&[0, 1_000, 3_000])));
        assert_eq!(pcm.0, vec![0, 500, 1_000, 2_000, 3_000, 3_000]);
    }

    #[test]
    fn ulaw_and_alaw_decode() {
        let samples = [0i16, 100, -100, 1_000, -1_000, 30_000, -30_000];
        let ulaw: Vec<u8> = samples.iter().map(|&s| g711::ulaw_encode(s)).collect();
        let alaw: Vec<u8> = samples.iter().map(|&s| g711::alaw_encode(s)).collect();
        let pcm = read(&wav(FORMAT_ULAW, 1, RATE, 8, &ulaw));
        let expected: Vec<i16> = ulaw.iter().map(|&b| g711::ulaw_decode(b)).collect();
        assert_eq!(pcm.0, expected);
        let pcm = read(&wav(FORMAT_ALAW, 1, RATE, 8, &alaw));
        let expected: Vec<i16> = alaw.iter().map(|&b| g711::alaw_decode(b)).collect();
        assert_eq!(pcm.0, expected);
    }

    #[test]
    fn float_decodes() {
        let values = [0.0f32, 0.5, -0.5, 1.0, -1.0, 2.0, f32::NAN, f32::INFINITY];
        let expected = vec![0, 16_384, -16_384, 32_767, -32_768, 32_767, 0, 0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(read(&wav(FORMAT_FLOAT, 1, RATE, 32, &bytes)).0, expected);
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| f64::from(*v).to_le_bytes())
            .collect();
        assert_eq!(read(&wav(FORMAT_FLOAT, 1, RATE, 64, &bytes)).0, expected);
    }

    #[test]
    fn integer_sizes_decode() {
        // 24-bit: the top 16 bits, rounded.
        let values = [0x12_3456i32, -0x12_3456, 0x7f_ffff, -0x80_0000, 0x80];
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| v.to_le_bytes().into_iter().take(3))
            .collect();
        let pcm = read(&wav(FORMAT_PCM, 1, RATE, 24, &bytes));
        assert_eq!(pcm.0, vec![0x1234, -0x1234, 32_767, -32_768, 1]);
        // 32-bit.
        let values = [0x1234_5678i32, i32::MIN, i32::MAX, 0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let pcm = read(&wav(FORMAT_PCM, 1, RATE, 32, &bytes));
        assert_eq!(pcm.0, vec![0x1234, -32_768, 32_767, 0]);
        // 8-bit, unsigned.
        let pcm = read(&wav(FORMAT_PCM, 1, RATE, 8, &[128, 0, 255, 192]));
        assert_eq!(pcm.0, vec![0, -32_768, 32_512, 16_384]);
    }

    fn extensible(subformat: [u8; 4], channels: u16, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut body = fmt_body(FORMAT_EXTENSIBLE, channels, RATE, bits);
        body.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        body.extend_from_slice(&bits.to_le_bytes()); // valid bits
        body.extend_from_slice(&3u32.to_le_bytes()); // front left and right
        body.extend_from_slice(&subformat);
        body.extend_from_slice(&SUBTYPE_SUFFIX);
        riff(&[chunk(b"fmt ", &body), chunk(b"data", data)])
    }

    #[test]
    fn extensible_format() {
        let pcm = read(&extensible(
            [1, 0, 0, 0],
            2,
            16,
            &le16(&[100, 300, -100, -300]),
        ));
        assert_eq!(pcm.0, vec![200, -200]);
        let floats: Vec<u8> = [0.25f32, 0.75]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let pcm = read(&extensible([3, 0, 0, 0], 2, 32, &floats));
        assert_eq!(pcm.0, vec![16_384]);
        let pcm = read(&extensible([7, 0, 0, 0], 1, 8, &[0xff]));
        assert_eq!(pcm.0, vec![0]);
        assert_eq!(
            read_wav(&extensible([0x55, 0, 0, 0], 1, 16, &[]), 10),
            Err(WavError::UnsupportedFormat { format: 0x55 })
        );
        let mut odd = extensible([1, 0, 0, 0], 1, 16, &[]);
        // The GUID's last byte (0x71) sits before the data chunk's header.
        let at = odd.len() - 9;
        if let Some(byte) = odd.get_mut(at) {
            *byte = 0x72;
        }
        let error = read_wav(&odd, 10).expect_err("not a known subformat");
        assert_eq!(
            error,
            WavError::UnsupportedSubformat {
                guid: "00000001-0000-0010-8000-00aa00389b72".into()
            }
        );
        // Extensible without its extension.
        let short = wav(FORMAT_EXTENSIBLE, 1, RATE, 16, &[]);
        assert!(matches!(
            read_wav(&short, 10),
            Err(WavError::MalformedFormat { .. })
        ));
    }

    #[test]
    fn truncated_files() {
        let file = wav(FORMAT_PCM, 1, RATE, 16, &le16(&[1, 2, 3, 4]));
        // Inside the fmt chunk.
        let cut = file.get(..30).expect("long enough");
        assert_eq!(read_wav(cut, 10), Err(WavError::Truncated));
        // Inside the RIFF header.
        assert_eq!(read_wav(b"RIFF\x10\0", 10), Err(WavError::Truncated));
        assert_eq!(read_wav(b"RI", 10), Err(WavError::Truncated));
        // Inside a chunk header after fmt.
        let cut = file.get(..40).expect("long enough");
        assert_eq!(read_wav(cut, 10), Err(WavError::Truncated));
        // Inside the audio: what is there is read, the last half-frame
        // dropped.
        let cut = file.get(..49).expect("long enough");
        assert_eq!(read_wav(cut, 10), Ok(Pcm(vec![1, 2])));
        // Just the headers.
        let cut = file.get(..36).expect("long enough");
        assert_eq!(read_wav(cut, 10), Err(WavError::NoData));
    }

    #[test]
    fn not_wav_files() {
        assert_eq!(read_wav(b"", 10), Err(WavError::NotRiff));
        assert_eq!(read_wav(b"ID3\x04\0\0\0\0\0\0", 10), Err(WavError::NotRiff));
        assert_eq!(read_wav(b"OggS\0\x02", 10), Err(WavError::NotRiff));
        assert_eq!(
            read_wav(b"RIFF\x04\0\0\0AVI LIST", 10),
            Err(WavError::NotWave)
        );
        let mut big_endian = wav(FORMAT_PCM, 1, RATE, 16, &[]);
        if let Some(magic) = big_endian.get_mut(..4) {
            magic.copy_from_slice(b"RIFX");
        }
        assert_eq!(read_wav(&big_endian, 10), Err(WavError::BigEndian));
        assert_eq!(
            WavError::NotRiff.to_string(),
            "not a WAV file: no RIFF header"
        );
    }

    #[test]
    fn unsupported_formats() {
        let mp3 = wav(0x55, 2, 44_100, 0, &[0; 100]);
        let error = read_wav(&mp3, 10).expect_err("MP3");
        assert_eq!(error, WavError::UnsupportedFormat { format: 85 });
        assert_eq!(
            error.to_string(),
            "WAV format 85 (MP3) is not supported: use PCM, μ-law or A-law"
        );
        let odd = read_wav(&wav(0x1234, 1, RATE, 16, &[]), 10).expect_err("unknown");
        assert_eq!(
            odd.to_string(),
            "WAV format 4660 is not supported: use PCM, μ-law or A-law"
        );
        assert_eq!(
            read_wav(&wav(FORMAT_FLOAT, 1, RATE, 16, &[]), 10),
            Err(WavError::UnsupportedSampleSize {
                format: FORMAT_FLOAT,
                bits: 16
            })
        );
        assert_eq!(
            read_wav(&wav(FORMAT_PCM, 1, RATE, 0, &[]), 10),
            Err(WavError::UnsupportedSampleSize {
                format: FORMAT_PCM,
                bits: 0
            })
        );
        assert_eq!(
            read_wav(&wav(FORMAT_PCM, 1, RATE, 40, &[]), 10),
            Err(WavError::UnsupportedSampleSize {
                format: FORMAT_PCM,
                bits: 40
            })
        );
        assert_eq!(
            read_wav(&wav(FORMAT_ULAW, 1, RATE, 16, &[]), 10)
                .expect_err("16-bit μ-law")
                .to_string(),
            "16-bit μ-law WAV is not supported: use 8-, 16-, 24- or 32-bit PCM, \
             32- or 64-bit float, or 8-bit μ-law or A-law"
        );
        let short_fmt = riff(&[chunk(b"fmt ", &[1, 0, 1, 0]), chunk(b"data", &[])]);
        assert!(matches!(
            read_wav(&short_fmt, 10),
            Err(WavError::MalformedFormat { .. })
        ));
    }

    #[test]
    fn zero_channels_and_bad_rates() {
        let data = le16(&[1, 2, 3, 4]);
        assert_eq!(
            read_wav(&wav(FORMAT_PCM, 0, RATE, 16, &data), 10),
            Err(WavError::NoChannels)
        );
        for rate in [0, 1, 3_999, 192_001, u32::MAX] {
            assert_eq!(
                read_wav(&wav(FORMAT_PCM, 1, rate, 16, &data), 10),
                Err(WavError::UnsupportedRate { rate })
            );
        }
        assert!(read_wav(&wav(FORMAT_PCM, 1, 4_000, 16, &data), 10).is_ok());
        assert!(read_wav(&wav(FORMAT_PCM, 1, 192_000, 16, &data), 10).is_ok());
    }

    /// A file whose data chunk claims `size` bytes but holds `data`.
    fn claiming(size: u32, channels: u16, rate: u32, data: &[u8]) -> Vec<u8> {
        let mut out = riff(&[fmt(FORMAT_PCM, channels, rate, 16)]);
        out.extend_from_slice(b"data");
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn absurd_headers() {
        let audio = le16(&sine(300.0, RATE, 800, 5_000.0));
        // Gigabytes claimed, 1600 bytes there: the 1600 bytes are read.
        let pcm = read(&claiming(0xffff_fff0, 1, RATE, &audio));
        assert_eq!(pcm.0.len(), 800);
        // 65535 channels at 192 kHz: a frame is larger than the data.
        let pcm = read(&claiming(u32::MAX, u16::MAX, 192_000, &audio));
        assert_eq!(pcm, Pcm::default());
        // An absurd fmt chunk size.
        let mut file = b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\xff".to_vec();
        file.extend_from_slice(&fmt_body(FORMAT_PCM, 1, RATE, 16));
        assert_eq!(read_wav(&file, 10), Err(WavError::Truncated));
        // An absurd unknown chunk before fmt.
        let mut file = riff(&[]);
        file.extend_from_slice(b"LIST\xff\xff\xff\x7f");
        file.extend_from_slice(&fmt(FORMAT_PCM, 1, RATE, 16));
        assert_eq!(read_wav(&file, 10), Err(WavError::Truncated));
    }

    #[test]
    fn length_is_bounded() {
        let second = le16(&vec![100; 8_000]);
        assert_eq!(
            read_wav(&wav(FORMAT_PCM, 1, RATE, 16, &second), 1).map(|p| p.0.len()),
            Ok(8_000)
        );
        let two = [second.clone(), second].concat();
        let long = wav(FORMAT_PCM, 1, RATE, 16, &two);
        assert_eq!(read_wav(&long, 1), Err(WavError::TooLong { max_secs: 1 }));
        assert_eq!(read_wav(&long, 0), Err(WavError::TooLong { max_secs: 0 }));
        // Bounded by what is there, not by what the header claims.
        let streamed = claiming(u32::MAX, 1, RATE, &two);
        assert_eq!(
            read_wav(&streamed, 1),
            Err(WavError::TooLong { max_secs: 1 })
        );
        assert_eq!(read_wav(&streamed, 2).map(|p| p.0.len()), Ok(16_000));
    }

    #[test]
    fn streaming_sizes() {
        let audio = le16(&[5, 6, 7]);
        assert_eq!(read(&claiming(u32::MAX, 1, RATE, &audio)).0, vec![5, 6, 7]);
        // A 0-size data chunk with audio after it.
        assert_eq!(read(&claiming(0, 1, RATE, &audio)).0, vec![5, 6, 7]);
        // A 0-size data chunk followed by another chunk is empty.
        let file = riff(&[
            fmt(FORMAT_PCM, 1, RATE, 16),
            chunk(b"data", &[]),
            chunk(b"LIST", b"INFOISFT"),
        ]);
        assert_eq!(read(&file), Pcm::default());
        // The RIFF size is not trusted.
        let mut file = wav(FORMAT_PCM, 1, RATE, 16, &audio);
        if let Some(size) = file.get_mut(4..8) {
            size.copy_from_slice(&[0, 0, 0, 0]);
        }
        assert_eq!(read(&file).0, vec![5, 6, 7]);
    }

    #[test]
    fn unknown_chunks_are_skipped() {
        let audio = le16(&[10, -10, 20]);
        let file = riff(&[
            chunk(b"JUNK", &[0; 3]), // odd: padded
            chunk(b"LIST", b"INFOINAM\x05\0\0\0hello"),
            chunk(b"bext", &[1; 7]),
            fmt(FORMAT_PCM, 1, RATE, 16),
            chunk(b"fact", &[3, 0, 0, 0]),
            chunk(b"cue ", &[0; 5]),
            chunk(b"data", &audio),
            chunk(b"LIST", b"trailing"),
        ]);
        assert_eq!(read(&file).0, vec![10, -10, 20]);
        // Odd-sized 8-bit data is padded too, and fmt may follow data.
        let file = riff(&[
            chunk(b"data", &[128, 255, 0]),
            chunk(b"LIST", b"x"),
            fmt(FORMAT_PCM, 1, RATE, 8),
        ]);
        assert_eq!(read(&file).0, vec![0, 32_512, -32_768]);
        // Without fmt or data.
        let file = riff(&[chunk(b"data", &audio)]);
        assert_eq!(read_wav(&file, 10), Err(WavError::NoFormat));
        let file = riff(&[fmt(FORMAT_PCM, 1, RATE, 16), chunk(b"LIST", b"")]);
        assert_eq!(read_wav(&file, 10), Err(WavError::NoData));
    }

    #[test]
    fn has_sound() {
        let tone = Pcm(sine(440.0, RATE, 8_000, 3_000.0));
        assert!(tone.has_sound(300, 500));
        assert!(tone.has_sound(300, 1_000));
        assert!(!tone.has_sound(300, 1_020));
        assert!(!tone.has_sound(3_000, 20));
        let silence = Pcm(vec![0; 8_000]);
        assert!(!silence.has_sound(300, 0));
        assert!(!silence.has_sound(0, 0));
        assert!(!Pcm::default().has_sound(300, 0));
        let hiss = Pcm(noise(8_000, 100));
        assert!(!hiss.has_sound(300, 20));
        assert!(hiss.has_sound(20, 1_000));
        // A 40 ms blip in silence.
        let mut blip = vec![0; 8_000];
        blip.extend(sine(440.0, RATE, 320, 3_000.0));
        blip.extend(vec![0; 8_000]);
        let blip = Pcm(blip);
        assert!(blip.has_sound(300, 40));
        assert!(!blip.has_sound(300, 100));
    }

    #[test]
    fn no_truncation_panics() {
        let stereo_24: Vec<u8> = sine(700.0, 44_100, 400, 20_000.0)
            .iter()
            .flat_map(|s| {
                let wide = i32::from(*s) << 8;
                let [a, b, c, _] = wide.to_le_bytes();
                [a, b, c, c, b, a]
            })
            .collect();
        let files = [
            riff(&[
                chunk(b"JUNK", &[0; 5]),
                fmt(FORMAT_PCM, 2, 44_100, 24),
                chunk(b"LIST", b"INFOISFT\x03\0\0\0abc"),
                chunk(b"data", &stereo_24),
            ]),
            extensible([3, 0, 0, 0], 2, 32, &[0x3f; 64]),
            wav(FORMAT_ULAW, 1, 11_025, 8, &[0x55; 101]),
            Pcm(sine(300.0, RATE, 200, 9_000.0)).to_wav(),
        ];
        for file in files {
            assert!(read_wav(&file, 10).is_ok());
            for len in 0..file.len() {
                let cut = file.get(..len).expect("within the file");
                let _ = read_wav(cut, 10);
                let _ = read_wav(cut, 0);
            }
        }
    }
}
