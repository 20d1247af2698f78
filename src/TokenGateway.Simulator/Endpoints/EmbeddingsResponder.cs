using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Simulator.Generation;
using TokenGateway.Simulator.Prompts;

namespace TokenGateway.Simulator.Endpoints;

/// <summary>
/// OpenAI <c>POST /v1/embeddings</c>: deterministic unit vectors (seeded by model and input), <c>dimensions</c> and
/// <c>encoding_format: base64</c> honoured, usage counted with the model's tokenizer (token-array inputs count their length).
/// </summary>
internal static class EmbeddingsResponder
{
    private const int MaxDimensions = 8192;

    public static bool IsValidInput(JsonNode? input) => input switch
    {
        JsonValue v => v.GetValueKind() == JsonValueKind.String,
        JsonArray { Count: > 0 } items => items.All(i => i is JsonValue or JsonArray),
        _ => false,
    };

    public static async Task RespondAsync(SimRequest request)
    {
        var body = request.Body;
        var dimensions = request.ReadInt("dimensions") ?? request.Profile.EmbeddingDimensions;
        if (dimensions is < 1 or > MaxDimensions)
        {
            await SimulatorErrors.WriteAsync(request.Http, false, 400, $"'dimensions' must be between 1 and {MaxDimensions}.", "dimensions");
            return;
        }

        var base64 = OpenAIPromptMeter.Str(body["encoding_format"]) == "base64";
        var inputs = body["input"] switch
        {
            JsonArray { Count: > 0 } array when array[0] is JsonValue first && first.GetValueKind() == JsonValueKind.Number => [array],
            JsonArray array => array.ToArray(),
            var single => [single],
        };

        var modelSeed = Fnv.Hash(request.Model.AsSpan());
        var vector = new float[dimensions];
        var tokens = 0;
        var buffer = new ArrayBufferWriter<byte>(inputs.Length * dimensions * (base64 ? 6 : 12) + 256);
        using (var json = JsonResponse.NewWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            for (var i = 0; i < inputs.Length; i++)
            {
                var input = inputs[i];
                ulong seed;
                if (input is JsonArray ids)
                {
                    tokens += ids.Count;
                    seed = modelSeed;
                    foreach (var id in ids)
                    {
                        seed = Fnv.Mix(seed, id is JsonValue v && v.TryGetValue<long>(out var l) ? l : 0);
                    }
                }
                else
                {
                    var text = OpenAIPromptMeter.Str(input) ?? input?.ToJsonString() ?? string.Empty;
                    tokens += TokenCounting.Count(request.Profile.Encoding, text);
                    seed = Fnv.Hash(text.AsSpan(), modelSeed);
                }

                Fill(vector, seed);
                json.WriteStartObject();
                json.WriteString("object", "embedding");
                json.WriteNumber("index", i);
                if (base64)
                {
                    json.WriteBase64String("embedding", MemoryMarshal.AsBytes(vector.AsSpan()));
                }
                else
                {
                    json.WriteStartArray("embedding");
                    foreach (var x in vector)
                    {
                        json.WriteNumberValue(x);
                    }

                    json.WriteEndArray();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("model", request.Model);
            if (!request.Faults.NoUsage)
            {
                json.WriteStartObject("usage");
                json.WriteNumber("prompt_tokens", tokens);
                json.WriteNumber("total_tokens", tokens);
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        await JsonResponse.WriteAsync(request, buffer);
    }

    /// <summary>Fills <paramref name="vector"/> with a deterministic Gaussian direction of unit length.</summary>
    internal static void Fill(Span<float> vector, ulong seed)
    {
        var rng = new SplitMix64(seed);
        double norm = 0;
        for (var i = 0; i < vector.Length; i++)
        {
            // Box-Muller: two uniforms → one normal sample.
            var u1 = 1.0 - rng.NextDouble();
            var u2 = rng.NextDouble();
            var x = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            vector[i] = (float)x;
            norm += x * x;
        }

        var scale = (float)(1.0 / Math.Sqrt(norm));
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] *= scale;
        }
    }
}
