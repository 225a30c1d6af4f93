//! Twilio form bodies: parsing any bytes and reading typed parameters never
//! panics (every refusal is an `ApiError`).
#![no_main]

use chat_media::http::TwilioForm;
use chat_media::sid::{ChannelSid, MediaSid, RoleSid};
use chat_media::Identity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let form = TwilioForm::parse(data);
    for name in ["Body", "MediaSid", "From", "Attributes", "PageSize", "Permission", ""] {
        let _ = form.get(name);
        let _ = form.required(name);
        let _ = form.parsed::<u32>(name);
        let _ = form.parsed::<i64>(name);
        let _ = form.parsed::<bool>(name);
        let _ = form.parsed::<MediaSid>(name);
        let _ = form.parsed::<ChannelSid>(name);
        let _ = form.parsed::<RoleSid>(name);
        let _ = form.get(name).map(Identity::parse);
    }
});
