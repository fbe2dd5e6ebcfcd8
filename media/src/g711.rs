//! ITU-T G.711: 16-bit linear PCM to and from 8-bit μ-law (PCMU, RTP
//! payload type 0) and A-law (PCMA, payload type 8).
//!
//! Both laws are piecewise-linear approximations of a logarithm: a sign
//! bit, a 3-bit segment (exponent) and a 4-bit step within the segment.
//! μ-law works on 14-bit magnitudes with a bias of 33 so that every segment
//! starts on a power of two; A-law on 13-bit magnitudes, its first two
//! segments sharing one step size. Encoded bytes are transmitted inverted
//! (μ-law: all bits; A-law: even bits, `0x55`), which keeps silence from
//! being a run of zero bytes.

/// μ-law bias: added to the magnitude so segment `e` starts at `2^(e+5)`.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude μ-law encodes before clipping.
const ULAW_CLIP: i32 = 32_635;

/// Encodes one sample to μ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    let sign: u8 = if value < 0 { 0x80 } else { 0 };
    let magnitude = value.unsigned_abs().min(ULAW_CLIP as u32) as i32 + ULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let exponent = (31 - magnitude.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !(sign | ((exponent as u8) << 4) | mantissa as u8)
}

/// Decodes one μ-law byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let code = !byte;
    let exponent = u32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0f);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    // At most (15 << 3 + 132) << 7 - 132 = 32124: always fits.
    let magnitude = magnitude as i16;
    if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Encodes one sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13 bits: drop the three lowest.
    let value = i32::from(sample) >> 3;
    let (sign, magnitude) = if value >= 0 {
        (0x80u8, value)
    } else {
        (0x00u8, -value - 1)
    };
    let magnitude = magnitude.min(0x0fff);
    let code = if magnitude < 32 {
        // Segments 0 and 1 share the step size 2 (in 13-bit units).
        (magnitude >> 1) as u8
    } else {
        let exponent = 31 - magnitude.leading_zeros() - 4; // 1..=7
        let mantissa = (magnitude >> exponent) & 0x0f;
        ((exponent as u8) << 4) | mantissa as u8
    };
    (sign | code) ^ 0x55
}

/// Decodes one A-law byte.
pub fn alaw_decode(byte: u8) -> i16 {
    let code = byte ^ 0x55;
    let exponent = u32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0f);
    // The middle of the step, in 16-bit units.
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // At most (15 << 4 + 264) << 6 = 32256: always fits.
    let magnitude = magnitude as i16;
    if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_values() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_encode(-1), 0x7f);
    }

    #[test]
    fn alaw_reference_values() {
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32_256);
        assert_eq!(alaw_decode(0x2a), -32_256);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        assert_eq!(alaw_encode(i16::MIN), 0x2a);
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            // μ-law has two zeros; the positive one is canonical.
            let expected = if code == 0x7f { 0xff } else { code };
            assert_eq!(
                ulaw_encode(ulaw_decode(code)),
                expected,
                "μ-law {code:#04x}"
            );
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn encoding_is_monotonic_and_close() {
        type Law = (fn(i16) -> u8, fn(u8) -> i16);
        let laws: [Law; 2] = [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)];
        for (encode, decode) in laws {
            let mut previous = i32::MIN;
            for sample in i16::MIN..=i16::MAX {
                let back = i32::from(decode(encode(sample)));
                // Louder in, never quieter out.
                assert!(back >= previous, "{sample} -> {back} after {previous}");
                previous = back;
                // Within half the largest step (1024), plus μ-law's clip.
                assert!(
                    (back - i32::from(sample)).abs() <= 1024,
                    "{sample} -> {back}"
                );
            }
        }
    }
}
