build-tsan/obj/src/auth/jwt.o: src/auth/jwt.c src/auth/jwt.h
src/auth/jwt.h:
