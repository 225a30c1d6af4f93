// The one-line shim (README, "Flex"): every Twilio client twilio-run creates sends its Chat requests to TWILIO_CHAT_BASE_URL.
Object.defineProperty(require(require.resolve('twilio/lib/rest/ChatBase', { paths: [require.resolve('twilio-run')] })).prototype, 'baseUrl', { get: () => process.env.TWILIO_CHAT_BASE_URL, set() {}, configurable: true });
