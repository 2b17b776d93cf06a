//! Message encryption for Web Push (RFC 8291): the event is encrypted for
//! the browser's key with `aes128gcm` (RFC 8188), in one record, with a
//! fresh key pair and salt per message.

use aes_gcm::aead::Aead as _;
use aes_gcm::{Aes128Gcm, KeyInit as _};
use hkdf::Hkdf;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// The record size the header states: the one record holds every push
/// this service sends (an event is well under it).
const RECORD_SIZE: u32 = 4096;
/// The largest plaintext one record carries: the record size less the
/// tag (16) and the padding delimiter (1).
pub(crate) const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 17;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EncryptError {
    #[error("the subscription's key is not a P-256 point")]
    BadKey,
    #[error("the subscription's auth secret is not 16 bytes")]
    BadAuth,
    #[error("the message is over {MAX_PLAINTEXT} bytes")]
    TooLong,
}

/// `plaintext` encrypted for the browser whose key is `ua_public` (65
/// bytes, uncompressed) and auth secret `auth` (16 bytes): the body of a
/// push with `Content-Encoding: aes128gcm`.
pub(crate) fn encrypt(
    ua_public: &[u8],
    auth: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let salt: [u8; 16] = rand::random();
    // A scalar out of range is one chance in 2^128: draw again.
    let sender = loop {
        if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            break key;
        }
    };
    encrypt_with(ua_public, auth, plaintext, &sender, &salt)
}

/// [`encrypt`] with the sender's key pair and the salt given (RFC 8291's
/// example fixes both).
pub(crate) fn encrypt_with(
    ua_public: &[u8],
    auth: &[u8],
    plaintext: &[u8],
    sender: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, EncryptError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EncryptError::TooLong);
    }
    if auth.len() != 16 {
        return Err(EncryptError::BadAuth);
    }
    let ua_key = PublicKey::from_sec1_bytes(ua_public).map_err(|_| EncryptError::BadKey)?;
    if ua_public.len() != 65 {
        return Err(EncryptError::BadKey);
    }
    let as_public = sender.public_key().to_sec1_bytes();
    let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), ua_key.as_affine());

    // RFC 8291 §3.3-3.4: the input keying material from the shared secret
    // and the auth secret, then RFC 8188's key and nonce from it and the salt.
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(&as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF length");
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF length");
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF length");

    // One record, the last: the plaintext, then the delimiter 2, no padding.
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2);
    let ciphertext = Aes128Gcm::new_from_slice(&cek)
        .expect("a 16-byte key")
        .encrypt(&nonce.into(), record.as_slice())
        .map_err(|_| EncryptError::TooLong)?;

    // RFC 8188 §2.1: salt, record size, key id length, key id (the
    // sender's public key), then the record.
    let mut body = Vec::with_capacity(16 + 4 + 1 + as_public.len() + ciphertext.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&ciphertext);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 8291 Appendix A: the message, both key pairs, the auth secret
    /// and the salt it gives, and the body it gets.
    #[test]
    fn rfc_8291_appendix_a_is_reproduced_byte_for_byte() {
        let sender =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(sender.public_key().to_sec1_bytes()),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt_with(
            &b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            b"When I grow up, I want to be a watermelon",
            &sender,
            &salt,
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn each_message_gets_its_own_salt_and_key_and_bad_keys_are_refused() {
        let ua = SecretKey::from_slice(&[7u8; 32])
            .unwrap()
            .public_key()
            .to_sec1_bytes();
        let one = encrypt(&ua, &[1u8; 16], b"same").unwrap();
        let two = encrypt(&ua, &[1u8; 16], b"same").unwrap();
        assert_ne!(one[..86], two[..86]);
        assert_eq!(
            encrypt(&ua[..33], &[1u8; 16], b"x"),
            Err(EncryptError::BadKey)
        );
        assert_eq!(
            encrypt(&[4u8; 65], &[1u8; 16], b"x"),
            Err(EncryptError::BadKey)
        );
        assert_eq!(encrypt(&ua, &[1u8; 15], b"x"), Err(EncryptError::BadAuth));
        assert_eq!(
            encrypt(&ua, &[1u8; 16], &vec![0u8; MAX_PLAINTEXT + 1]),
            Err(EncryptError::TooLong)
        );
    }
}
