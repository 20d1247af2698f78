using System.Buffers;
using Microsoft.AspNetCore.Http;
using TokenGateway.Simulator.Prompts;

namespace TokenGateway.Simulator.Endpoints;

/// <summary><c>GET /v1/models</c>: the OpenAI list shape, or Anthropic's when the request carries <c>anthropic-version</c>.</summary>
internal static class ModelsResponder
{
    private const long Created = 1_735_689_600; // 2025-01-01T00:00:00Z: a fixed, plausible creation date

    public static async Task RespondAsync(HttpContext context, bool anthropic)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var json = JsonResponse.NewWriter(buffer))
        {
            json.WriteStartObject();
            if (anthropic)
            {
                var claude = ModelProfile.KnownModels.Where(m => m.StartsWith("claude", StringComparison.Ordinal)).ToArray();
                json.WriteStartArray("data");
                foreach (var model in claude)
                {
                    json.WriteStartObject();
                    json.WriteString("type", "model");
                    json.WriteString("id", model);
                    json.WriteString("display_name", model);
                    json.WriteString("created_at", DateTimeOffset.FromUnixTimeSeconds(Created));
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteBoolean("has_more", false);
                json.WriteString("first_id", claude[0]);
                json.WriteString("last_id", claude[^1]);
            }
            else
            {
                json.WriteString("object", "list");
                json.WriteStartArray("data");
                foreach (var model in ModelProfile.KnownModels)
                {
                    json.WriteStartObject();
                    json.WriteString("id", model);
                    json.WriteString("object", "model");
                    json.WriteNumber("created", Created);
                    json.WriteString("owned_by", model.StartsWith("claude", StringComparison.Ordinal) ? "anthropic" : "openai");
                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            json.WriteEndObject();
        }

        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = buffer.WrittenCount;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }
}
