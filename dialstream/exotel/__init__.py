"""Exotel's wire: the AgentStream WebSocket protocol and audio, the leg-event model, the Legs API client, the gRPC proto adapter."""
