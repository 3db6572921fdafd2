//! The protobuf codec of every generated client and server: prost's, except that a message
//! that does not decode is the caller's bad input (`INVALID_ARGUMENT`, R-X-3), not a fault of
//! the service (`INTERNAL`, tonic's answer). Prost's error names the message and field.

use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with [`InvalidInput`] for its decoder.
#[derive(Debug, Clone)]
pub struct FupinCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for FupinCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for FupinCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + prost::Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = InvalidInput<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        InvalidInput(self.0.decoder())
    }
}

/// Prost's decoder, answering a request (a `...Request` message, what a server decodes) that
/// does not decode with `INVALID_ARGUMENT`; a response that does not decode (a client's) keeps
/// prost's status: the fault is the server's, not the caller's input.
#[derive(Debug, Clone)]
pub struct InvalidInput<U>(ProstDecoder<U>);

impl<U: prost::Message + prost::Name + Default> Decoder for InvalidInput<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|s| {
            if U::NAME.ends_with("Request") {
                Status::invalid_argument(format!("request: {} [R-X-3]", s.message()))
            } else {
                s
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
