using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Translation;

namespace TokenGateway.Benchmarks.Translation;

/// <summary>
/// The translation cost the gateway adds to one cross-API request (issue #16), as the host pays it: the request body
/// (already parsed) translated and serialized once, the provider's JSON answer parsed, translated and serialized, and
/// a streamed answer translated event by event. A typical agent turn: system prompt, two tools, a tool call and its
/// result, then a question (about 2.5 KB); the answer carries text and a tool call.
/// </summary>
[MemoryDiagnoser]
public class TranslationBenchmarks
{
    private const string ChatRequest = """
        {"model":"claude-sonnet-4-5","max_completion_tokens":1024,"temperature":0.2,"stream":false,
         "messages":[
          {"role":"system","content":"You are a careful assistant for the operations team. Answer briefly, cite the tool results you used, and never invent figures. When a question needs live data, call a tool first."},
          {"role":"user","content":"What is the weather in Paris and is the Lyon office open today?"},
          {"role":"assistant","content":"Let me check both.","tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"}},
            {"id":"call_2","type":"function","function":{"name":"office_hours","arguments":"{\"office\":\"Lyon\",\"date\":\"2026-12-03\"}"}}]},
          {"role":"tool","tool_call_id":"call_1","content":"{\"city\":\"Paris\",\"temperature\":7,\"sky\":\"overcast\",\"wind_kmh\":18,\"humidity\":81}"},
          {"role":"tool","tool_call_id":"call_2","content":"{\"office\":\"Lyon\",\"open\":true,\"hours\":\"08:30-18:00\",\"note\":\"reception closes at 17:00\"}"},
          {"role":"assistant","content":"Paris is 7°C and overcast; the Lyon office is open 08:30–18:00 (reception until 17:00)."},
          {"role":"user","content":"Thanks. Will it rain in Paris this afternoon? If so, book the small meeting room in Lyon for 15:00 instead of the terrace."}],
         "tools":[
          {"type":"function","function":{"name":"get_weather","description":"Current weather and short forecast for a city","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"hours_ahead":{"type":"integer","minimum":0,"maximum":48}},"required":["city"]}}},
          {"type":"function","function":{"name":"office_hours","description":"Opening hours and room bookings of an office","parameters":{"type":"object","properties":{"office":{"type":"string"},"date":{"type":"string","format":"date"},"book_room":{"type":"string"},"at":{"type":"string"}},"required":["office"]}}}],
         "tool_choice":"auto"}
        """;

    private const string AnthropicAnswer = """
        {"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5",
         "content":[{"type":"text","text":"Rain is likely after 14:00 in Paris, so I'll book the small meeting room in Lyon for 15:00."},
          {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"office_hours","input":{"office":"Lyon","date":"2026-12-03","book_room":"small meeting room","at":"15:00"}}],
         "stop_reason":"tool_use","stop_sequence":null,
         "usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":1536,"output_tokens":89}}
        """;

    private const string AnthropicStream =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2,\"cache_read_input_tokens\":1536,\"cache_creation_input_tokens\":0},\"content\":[],\"stop_reason\":null}}\n\n"
        + "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        + "event: ping\ndata: {\"type\": \"ping\"}\n\n"
        + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Rain is likely after 14:00 in Paris,\"}}\n\n"
        + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" so I'll book the small room in Lyon.\"}}\n\n"
        + "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        + "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"office_hours\",\"input\":{}}}\n\n"
        + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"office\\\": \\\"Lyon\\\",\"}}\n\n"
        + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"book_room\\\": \\\"small\\\", \\\"at\\\": \\\"15:00\\\"}\"}}\n\n"
        + "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
        + "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
        + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    private JsonObject _chatRequest = null!;
    private JsonObject _messagesRequest = null!;
    private byte[] _anthropicAnswer = null!;
    private byte[] _chatAnswer = null!;
    private byte[] _anthropicStream = null!;
    private byte[] _chatStream = null!;
    private readonly ArrayBufferWriter<byte> _output = new(16 * 1024);

    [GlobalSetup]
    public void Setup()
    {
        _chatRequest = JsonNode.Parse(ChatRequest)!.AsObject();
        _messagesRequest = ChatToMessagesRequest.Translate(_chatRequest).Body!;
        _messagesRequest["model"] = "gpt-4.1";
        _anthropicAnswer = Encoding.UTF8.GetBytes(AnthropicAnswer);
        _chatAnswer = JsonSerializer.SerializeToUtf8Bytes(ResponseTranslator.MessageToChatCompletion(JsonNode.Parse(_anthropicAnswer)!.AsObject(), 1));
        _anthropicStream = Encoding.UTF8.GetBytes(AnthropicStream);
        using var toChat = new AnthropicToChatStreamTranslator(includeUsage: true, created: 1);
        var chat = new ArrayBufferWriter<byte>();
        toChat.Process(_anthropicStream, chat);
        _chatStream = chat.WrittenSpan.ToArray();
    }

    /// <summary>Chat Completions request → Messages body bytes (the forward preparation stage's work).</summary>
    [Benchmark]
    public int ChatRequestToMessages() =>
        JsonSerializer.SerializeToUtf8Bytes(ChatToMessagesRequest.Translate(_chatRequest).Body, LlmRequestParser.WriteOptions).Length;

    /// <summary>Messages request → Chat Completions body bytes.</summary>
    [Benchmark]
    public int MessagesRequestToChat() =>
        JsonSerializer.SerializeToUtf8Bytes(MessagesToChatRequest.Translate(_messagesRequest).Body, LlmRequestParser.WriteOptions).Length;

    /// <summary>Anthropic message JSON → chat.completion bytes (parse, translate, serialize).</summary>
    [Benchmark]
    public int MessageAnswerToChat() =>
        JsonSerializer.SerializeToUtf8Bytes(ResponseTranslator.MessageToChatCompletion(JsonNode.Parse(_anthropicAnswer)!.AsObject(), 1), LlmRequestParser.WriteOptions).Length;

    /// <summary>chat.completion JSON → Anthropic message bytes.</summary>
    [Benchmark]
    public int ChatAnswerToMessage() =>
        JsonSerializer.SerializeToUtf8Bytes(ResponseTranslator.ChatCompletionToMessage(JsonNode.Parse(_chatAnswer)!.AsObject(), out _), LlmRequestParser.WriteOptions).Length;

    /// <summary>The 12-event Anthropic tool stream → chat chunks (a new translator per stream, as per response).</summary>
    [Benchmark]
    public int AnthropicStreamToChat()
    {
        _output.ResetWrittenCount();
        using var translator = new AnthropicToChatStreamTranslator(includeUsage: true, created: 1);
        translator.Process(_anthropicStream, _output);
        translator.Complete(_output);
        return _output.WrittenCount;
    }

    /// <summary>The translated chat stream → Anthropic events.</summary>
    [Benchmark]
    public int ChatStreamToAnthropic()
    {
        _output.ResetWrittenCount();
        using var translator = new ChatToAnthropicStreamTranslator();
        translator.Process(_chatStream, _output);
        translator.Complete(_output);
        return _output.WrittenCount;
    }
}
