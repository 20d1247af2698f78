using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace TokenGateway.Simulator;

/// <summary>Writes errors in the caller's dialect: OpenAI <c>{"error":{…}}</c> or Anthropic <c>{"type":"error","error":{…}}</c>.</summary>
internal static class SimulatorErrors
{
    public static async Task WriteAsync(HttpContext context, bool anthropic, int status, string message, string? param = null, string? code = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer, SimulatorJson.WriterOptions))
        {
            json.WriteStartObject();
            if (anthropic)
            {
                json.WriteString("type", "error");
                json.WriteStartObject("error");
                json.WriteString("type", AnthropicType(status));
                json.WriteString("message", message);
                json.WriteEndObject();
            }
            else
            {
                json.WriteStartObject("error");
                json.WriteString("message", message);
                json.WriteString("type", OpenAIType(status));
                WriteNullable(json, "param", param);
                WriteNullable(json, "code", code ?? OpenAICode(status));
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = buffer.WrittenCount;
        response.Headers[anthropic ? "request-id" : "x-request-id"] = Ids.New(anthropic ? "req_" : "req_", 24);
        if (status is 429 or 503 or 529)
        {
            response.Headers.RetryAfter = "1";
        }

        await response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    /// <summary>
    /// The provider's 404 for a model it does not serve, byte for byte the shape the real API sends: OpenAI
    /// <c>{"error":{"message":"The model `x` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}</c>,
    /// Anthropic <c>{"type":"error","error":{"type":"not_found_error","message":"model: x"}}</c>.
    /// </summary>
    public static Task WriteModelNotFoundAsync(HttpContext context, bool anthropic, string model) => anthropic
        ? WriteAsync(context, anthropic: true, 404, "model: " + model)
        : WriteAsync(context, anthropic: false, 404, $"The model `{model}` does not exist or you do not have access to it.", code: "model_not_found");

    /// <summary>An HTML error page, as a load balancer or CDN in front of a provider answers (fault <c>html-error</c>).</summary>
    public static async Task WriteHtmlAsync(HttpContext context, int status)
    {
        var html = Encoding.UTF8.GetBytes(
            $"<html><head><title>{status} Service Temporarily Unavailable</title></head><body><center><h1>{status} Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body></html>\n");
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        response.ContentLength = html.Length;
        await response.Body.WriteAsync(html, context.RequestAborted);
    }

    /// <summary>The headers real providers add to answers (fault <c>provider-headers</c>); a gateway must not pass them on.</summary>
    public static void AddProviderHeaders(HttpResponse response)
    {
        response.Headers.SetCookie = "__cf_bm=simulated; path=/; HttpOnly; Secure";
        response.Headers["openai-organization"] = "org-simulated";
        response.Headers["openai-project"] = "proj_simulated";
        response.Headers["x-ratelimit-remaining-requests"] = "4999";
        response.Headers["x-ratelimit-remaining-tokens"] = "799000";
        response.Headers["anthropic-ratelimit-requests-remaining"] = "49";
    }

    private static void WriteNullable(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static string OpenAIType(int status) => status switch
    {
        401 => "invalid_request_error",
        403 => "permission_error",
        404 => "invalid_request_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    private static string? OpenAICode(int status) => status switch
    {
        401 => "invalid_api_key",
        404 => "model_not_found",
        429 => "rate_limit_exceeded",
        >= 500 => "server_error",
        _ => null,
    };

    private static string AnthropicType(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 or 529 => "overloaded_error",
        >= 500 => "api_error",
        _ => "invalid_request_error",
    };
}
